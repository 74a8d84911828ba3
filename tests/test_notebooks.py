"""The study notebooks: committed without outputs, parameterisable, and executed end to end.

Execution goes through nbmake (``python -m pytest --nbmake studies/notebooks``) in a subprocess,
exactly what a user or CI would run; a notebook whose cell raises makes that run, and this test,
fail (checked on a deliberately broken notebook). The kernel is the current interpreter's
(``python3``: ipykernel's kernelspec in the venv, or ipykernel's built-in one).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import strip_notebooks  # noqa: E402

NB_DIR = ROOT / "studies" / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("*.ipynb"))
EXPECTED = {"01_mutransfer_check.ipynb", "02_fit_your_runs.ipynb", "03_plan_and_export.ipynb",
            "04_published_runs.ipynb"}
#: The published runs notebook 04 re-plans (issue 15's six presets, planner/recipes.py).
PUBLISHED_RUNS = ["llm-jp-3-1.8b-exp2", "ibm-7b-fsdp", "k2-65b", "amber-7b", "crystal-7b", "dmas-llama-lite-1.7b"]


def _nbmake(*paths: Path, timeout: float = 420) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--nbmake", "--nbmake-timeout=240", "-q", "-p", "no:cacheprovider",
         "--rootdir", str(paths[0].parent), *map(str, paths)],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_the_notebooks_exist():
    assert EXPECTED <= {p.name for p in NOTEBOOKS}


def test_published_runs_notebook_replans_the_six_presets():
    from planner.plan.presets import preset_names

    code = [c for c in _load(NB_DIR / "04_published_runs.ipynb")["cells"] if c["cell_type"] == "code"]
    params: dict = {}
    exec("".join(code[0]["source"]), {}, params)  # the parameters cell: plain assignments
    assert params["PRESETS"] == PUBLISHED_RUNS and set(PUBLISHED_RUNS) <= set(preset_names())
    body = "".join("".join(c["source"]) for c in code)
    assert "DEFAULT_LAW" in body and "predict_loss" in body and "make_subplots" in body


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_has_no_outputs(path):
    nb = _load(path)
    assert strip_notebooks.problems(nb) == []
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None
    # and the stripper would not change a byte
    assert strip_notebooks.dumps(strip_notebooks.strip(nb)) == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_is_tagged_parameters(path):
    code = [c for c in _load(path)["cells"] if c["cell_type"] == "code"]
    assert "parameters" in code[0]["metadata"].get("tags", [])
    src = "".join(code[0]["source"])
    assert "WORKDIR" in src  # every notebook lets a user keep (and resume) its results
    assert "import" not in src  # parameters only: values a user edits, nothing else


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_calls_the_library_not_private_code(path):
    src = "\n".join("".join(c["source"]) for c in _load(path)["cells"] if c["cell_type"] == "code")
    assert "from planner" in src or "from proxy_train" in src
    assert "def " not in src  # no re-implemented helpers: the notebooks are thin over the library


def test_strip_removes_outputs_and_keeps_tags(tmp_path):
    nb = {"cells": [
        {"cell_type": "code", "execution_count": 3, "id": "a", "metadata": {"tags": ["parameters"], "scrolled": True},
         "outputs": [{"output_type": "stream", "name": "stdout", "text": ["hi\n"]}], "source": ["X = 1"]},
        {"cell_type": "markdown", "id": "b", "metadata": {}, "source": ["# t"]}],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "P", "language": "python"},
                     "widgets": {"state": {}}},
        "nbformat": 4, "nbformat_minor": 5}
    p = tmp_path / "x.ipynb"
    p.write_text(json.dumps(nb))
    assert strip_notebooks.main(["--check", str(p)]) == 1
    assert json.loads(p.read_text()) == nb  # --check changes nothing
    assert strip_notebooks.main([str(p)]) == 0
    out = _load(p)
    assert strip_notebooks.problems(out) == []
    assert out["cells"][0]["metadata"] == {"tags": ["parameters"]}
    assert out["cells"][0]["source"] == ["X = 1"] and out["cells"][1]["source"] == ["# t"]
    assert out["metadata"] == {"kernelspec": nb["metadata"]["kernelspec"]}
    assert strip_notebooks.main(["--check", str(p)]) == 0


def test_a_failing_cell_fails_the_nbmake_run(tmp_path):
    nb = {"cells": [{"cell_type": "code", "execution_count": None, "id": "c1", "metadata": {}, "outputs": [],
                     "source": ["from planner.laws import load_law\n", "load_law('no-such-law')"]}],
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    p = tmp_path / "broken.ipynb"
    p.write_text(json.dumps(nb))
    res = _nbmake(p, timeout=180)
    assert res.returncode != 0, res.stdout[-2000:]
    assert "no-such-law" in res.stdout + res.stderr


@pytest.mark.slow
def test_notebooks_execute_without_errors():
    """All cells of every notebook run at their default (toy) settings; about 40 s on 2 busy cores."""
    res = _nbmake(*NOTEBOOKS)
    tail = (res.stdout + res.stderr)[-4000:]
    assert res.returncode == 0, tail
    assert f"{len(NOTEBOOKS)} passed" in res.stdout, tail
