"""Checked when the command line is read, before any work: output files (a folder, a path under a
file, or an unwritable folder) and worker counts beyond the usable cores: one line, exit 2, nothing
written (issue 18 items 6 and 7)."""
from __future__ import annotations

import pytest

from scaleplan.cli import main


def _tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("argv", [
    ["plan", "--flops", "1e21", "--out", "{dir}"],
    ["plan", "--flops", "1e21", "--out", "{file}/plan.yaml"],
    ["optimal", "--flops", "1e21", "--plot", "{dir}"],
    ["optimal", "--flops", "1e21", "--plot", "{file}/x.html"],
    ["fit", "runs.csv", "--n-col", "N", "--loss-col", "L", "--d-col", "D", "--out", "{dir}"],
    ["fit", "runs.csv", "--n-col", "N", "--loss-col", "L", "--d-col", "D", "--plot", "{file}/fit.html"],
])
def test_bad_output_path_is_refused_before_work(tmp_path, capsys, argv):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    before = _tree(tmp_path)
    argv = [a.format(dir=tmp_path / "adir", file=tmp_path / "afile") for a in argv]
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert _tree(tmp_path) == before


def test_a_good_output_path_is_written(tmp_path, capsys):
    out = tmp_path / "new" / "plan.yaml"
    assert main(["plan", "--flops", "1e21", "--out", str(out)]) == 0
    assert out.is_file()


def test_more_workers_than_cores_needs_oversubscribe(tmp_path, capsys):
    from scaleplan.commands import usable_cores

    n = usable_cores() + 1
    for argv in (["sweep", "--study", str(tmp_path / "s"), "--data", str(tmp_path / "d")],
                 ["ladder", "--study", str(tmp_path / "l"), "--data", str(tmp_path / "d"), "--hparams", "h.yaml"],
                 ["transfer-check", "--out", str(tmp_path / "t"), "--data", str(tmp_path / "d")],
                 ["demo", "--study", str(tmp_path / "demo")],
                 ["fit", str(tmp_path / "runs.csv"), "--n-col", "N", "--loss-col", "L", "--d-col", "D"]):
        assert main([*argv, "--workers", str(n)]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "--oversubscribe" in err and f"--workers {n}" in err
    assert list(tmp_path.iterdir()) == []  # refused before anything was created
    # with --oversubscribe the worker check passes and the command fails later, on the missing data
    assert main(["sweep", "--study", str(tmp_path / "s"), "--data", str(tmp_path / "d"), "--workers", str(n),
                 "--oversubscribe"]) == 2
    assert "--oversubscribe" not in capsys.readouterr().err
