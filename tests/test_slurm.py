"""`scaleplan sweep` and `scaleplan transfer-check` --emit-sbatch / --dry-run (proxy_train/slurm.py):
valid bash (``bash -n``), every #SBATCH line (SLURM sbatch manual: --array, --cpus-per-task, --gres,
--time, --output), the worker command of each array task, and a password never written."""
from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, run_cli, skip_or_fail

OBJ = f"{ROOT / 'tests' / 'sweep_objectives.py'}:slow_bowl"


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("sbdata")
    (d / "meta.json").write_text('{"vocab_size": 320, "sha256": "slurm-test", "dtype": "uint16"}')
    return d


def _exec_line(text: str) -> list[str]:
    return shlex.split([ln for ln in text.splitlines() if ln.startswith("exec ")][0])[1:]


def _bash_ok(path: Path) -> bool:
    if shutil.which("bash") is None:
        skip_or_fail("bash not found")
    return subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0


def test_sweep_sbatch(tmp_path, fake_data):
    out, study, url = tmp_path / "sweep.sbatch", tmp_path / "sw", "postgresql://scaleplan@db.example:5432/sweeps"
    r = run_cli("sweep", "--study", study, "--data", fake_data, "--widths", "64,128", "--trials", "40",
                "--storage", url, "--emit-sbatch", out, "--array-tasks", "8", "--cpus-per-task", "2",
                "--gpus-per-task", "1", "--time", "1-00:00:00", "--partition", "gpu q", "--mem", "8G",
                "--steps", "300", "--tune-wd", "--objective", OBJ)
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert _bash_ok(out)
    sb = [ln for ln in text.splitlines() if ln.startswith("#SBATCH")]
    assert sb == ["#SBATCH --job-name=sweep-sw", "#SBATCH --array=0-7", "#SBATCH --ntasks=1",
                  "#SBATCH --cpus-per-task=2", "#SBATCH --gres=gpu:1", "#SBATCH --time=1-00:00:00",
                  "#SBATCH --output=slurm-%x-%A_%a.out", "#SBATCH --partition='gpu q'", "#SBATCH --mem=8G"]
    cmd = _exec_line(text)
    assert cmd[:4] == [sys.executable, "-m", "scaleplan.cli", "sweep"]
    opts = dict(zip(cmd[4:], cmd[5:]))
    assert opts["--study"] == str(study.resolve()) and opts["--data"] == str(fake_data.resolve())
    assert opts["--workers"] == "1" and opts["--trials"] == "40" and opts["--widths"] == "64,128"
    assert opts["--steps"] == "300" and opts["--storage"] == url and "--tune-wd" in cmd
    assert "export OMP_NUM_THREADS=2" in text
    assert not study.exists()  # writing the job trains and records nothing
    # the array task's command parses as a sweep (same parser, same values)
    from scaleplan.cli import build_parser

    args = build_parser().parse_args(cmd[3:])
    assert args.trials == 40 and args.widths == [64, 128] and args.workers == 1 and args.tune_wd


def test_sweep_dry_run_never_writes_a_password_and_refuses_a_journal(tmp_path, fake_data):
    out = tmp_path / "s.sbatch"
    sw = ["sweep", "--study", tmp_path / "sw", "--data", fake_data, "--objective", OBJ]
    r = run_cli(*sw, "--storage", "postgresql://u:secret@h/db", "--emit-sbatch", out, "--dry-run", "--array-tasks", "2")
    assert r.returncode == 0, r.stderr
    assert "secret" not in r.stdout and "--gres" not in r.stdout and "SCALEPLAN_SWEEP_STORAGE:?" in r.stdout
    assert "--storage" not in r.stdout.split("exec ", 1)[1] and not out.exists()
    r = run_cli(*sw, "--emit-sbatch", out)
    assert r.returncode == 2 and "needs --storage postgresql://" in r.stderr and not out.exists()
    r = run_cli(*sw, "--dry-run")
    assert r.returncode == 2 and "give --emit-sbatch too" in r.stderr
    r = run_cli(*sw, "--storage", "postgresql://h/db",
                "--emit-sbatch", out, "--time", "soon")
    assert r.returncode == 2 and "--time must be a SLURM time" in r.stderr and not out.exists()


def test_transfer_check_sbatch_enqueues_the_grid(tmp_path, fake_data):
    out, tc = tmp_path / "tc.sbatch", tmp_path / "tc"
    db = f"sqlite:///{tmp_path / 'q.db'}"
    grid = ["--widths", "32,64", "--param", "mup,sp", "--lrs=-10:-8:1", "--steps", "4", "--objective", OBJ]
    r = run_cli("transfer-check", "--out", tc, "--data", fake_data, *grid, "--storage", db, "--emit-sbatch", out,
                "--dry-run")
    assert r.returncode == 0 and "#SBATCH --array=0-11" in r.stdout, r.stderr
    assert not out.exists() and not tc.exists() and not (tmp_path / "q.db").exists()  # --dry-run writes nothing
    r = run_cli("transfer-check", "--out", tc, "--data", fake_data, *grid, "--storage", db, "--emit-sbatch", out,
                "--heartbeat-interval", "30", "--time", "90", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["array_tasks"] == 12  # one worker per cell by default
    text = out.read_text()
    assert _bash_ok(out)
    sb = [ln for ln in text.splitlines() if ln.startswith("#SBATCH")]
    assert sb == ["#SBATCH --job-name=transfer-tc", "#SBATCH --array=0-11", "#SBATCH --ntasks=1",
                  "#SBATCH --cpus-per-task=1", "#SBATCH --time=90", "#SBATCH --output=slurm-%x-%A_%a.out"]
    cmd = _exec_line(text)
    assert cmd[3:] == ["transfer-check", "--out", str(tc.resolve()), "--worker", "--heartbeat-interval", "30",
                       "--storage", db]
    from proxy_train.transfer_queue import read_queue

    spec, cells = read_queue(tc, db)  # enqueued, so the array's workers find the grid
    assert spec.kind == "transfer" and len(cells) == 12
    # without --data: the grid already in the storage sizes the array
    r = run_cli("transfer-check", "--out", tc, "--storage", db, "--emit-sbatch", out, "--dry-run")
    assert r.returncode == 0 and "#SBATCH --array=0-11" in r.stdout, r.stderr
    r = run_cli("transfer-check", "--out", tmp_path / "other", "--storage", db, "--emit-sbatch", out, "--dry-run")
    assert r.returncode == 2 and "no transfer check other" in r.stderr
