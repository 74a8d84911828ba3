"""Output files are checked when the command line is read, before any work: a folder, a path under a
file, or an unwritable folder is one line and exit 2, and nothing is written (issue 18 item 7)."""
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
