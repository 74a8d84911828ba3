"""`scaleplan app`: the host is validated, exposure beyond loopback is announced, --dry-run is shell-quoted."""
from __future__ import annotations

import shlex

import pytest

from scaleplan.cli import main
from scaleplan.commands.app import exposure_warning, is_loopback


@pytest.mark.parametrize("host, local", [("127.0.0.1", True), ("127.3.2.1", True), ("::1", True),
                                         ("localhost", True), ("0.0.0.0", False), ("192.168.1.5", False),
                                         ("::", False), ("dashboard.example", False)])
def test_loopback_is_recognised(host, local):
    assert is_loopback(host) is local
    assert (exposure_warning(host, 8501) is None) is local


def test_exposed_host_warns_and_dry_run_is_shell_quoted(tmp_path, capsys):
    studies = tmp_path / "my studies; $(touch x)"
    studies.mkdir()
    assert main(["app", "--dry-run", "--host", "0.0.0.0", "--studies", str(studies)]) == 0
    out, err = capsys.readouterr()
    assert "every network interface" in err and "port 8501" in err
    argv = shlex.split(out)  # a shell reads back exactly the argument list, the odd folder name intact
    assert argv[argv.index("--studies") + 1] == str(studies.resolve())
    assert argv[argv.index("--server.address") + 1] == "0.0.0.0"
    assert main(["app", "--dry-run", "--studies", str(studies)]) == 0
    assert capsys.readouterr().err == ""  # loopback by default: nothing to warn about


@pytest.mark.parametrize("host", ["0.0.0.0; rm -rf /", "host name", "-bad", ""])
def test_bad_host_is_one_line_exit_2(host, capsys):
    with pytest.raises(SystemExit) as e:
        main(["app", "--dry-run", "--host", host])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and "host" in err
