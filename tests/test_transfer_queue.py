"""The transfer check's grid as a shared queue (issue 17): workers on separate "machines" (separate
--out folders of the same name, so no shared disk but the data) drain one grid in PostgreSQL; a
SIGKILLed worker's cell is retried after its heartbeat goes stale; every cell finishes exactly once
and transfer.json / runs.csv are rebuilt from the storage, equal to a one-command journal run.

Cells run ``tests/sweep_objectives.py:slow_bowl`` (a timed stand-in for a proxy run whose loss is a
bowl in log2 LR, so the kill lands mid-cell and the result is deterministic); the real trainer runs
the transfer check end to end in tests/test_transfer.py. PostgreSQL: tests/test_sweep_faults.py's
``postgres`` fixture (a throwaway server from the Debian package).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, run_cli
from test_sweep_faults import postgres  # noqa: F401  (the fixture)

OBJ = f"{ROOT / 'tests' / 'sweep_objectives.py'}:slow_bowl"
GRID = ["--widths", "32,64", "--param", "mup", "--lrs=-10:-8:1", "--steps", "4", "--objective", OBJ]


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("tqdata")
    (d / "meta.json").write_text('{"vocab_size": 320, "sha256": "transfer-queue-test", "dtype": "uint16"}')
    return d


def _worker(out: Path, url: str) -> subprocess.Popen:
    env = {**os.environ, "SCALEPLAN_SWEEP_STORAGE": url, "SWEEP_FAKE_SLEEP": "2"}
    return subprocess.Popen([sys.executable, "-m", "scaleplan.cli", "transfer-check", "--out", str(out), "--worker",
                             "--heartbeat-interval", "1", "--grace-period", "3", "--json"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _study(url: str, name: str):
    import optuna

    from proxy_train.sweep_storage import open_storage

    return optuna.load_study(study_name=name, storage=open_storage(url))


def _running_started(url: str, name: str, roots: list[Path], timeout: float = 60.0):
    """A RUNNING cell whose run folder exists under one of the workers' --out folders."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            for t in _study(url, name).get_trials(deepcopy=False):
                rd = t.user_attrs.get("run_dir")
                if t.state.name == "RUNNING" and rd and any((r / rd / "started").exists() for r in roots):
                    return t
        except Exception:
            pass
        time.sleep(0.2)
    raise AssertionError("no cell started running in time")


@pytest.mark.e2e
@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_two_machines_one_killed_every_cell_once(tmp_path, fake_data, postgres):  # noqa: F811
    ref = tmp_path / "ref" / "tc"  # the same grid, one command, journal file
    r = run_cli("transfer-check", "--out", ref, "--data", fake_data, *GRID, "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    want = json.loads(r.stdout)

    a, b = tmp_path / "machine_a" / "tc", tmp_path / "machine_b" / "tc"
    r = run_cli("transfer-check", "--out", tmp_path / "enqueuer" / "tc", "--data", fake_data, *GRID,
                "--storage", postgres, "--enqueue", "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout)["target_trials"] == 6
    procs = [_worker(a, postgres), _worker(b, postgres)]
    try:
        victim = _running_started(postgres, "tc", [a, b])
        os.kill(int(victim.user_attrs["worker"].split(":")[1]), signal.SIGKILL)
        outs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
    codes = sorted(p.returncode for p in procs)
    assert codes == [-signal.SIGKILL, 0], [o[1][-1500:] for o in outs]
    survivor = next(o for p, o in zip(procs, outs) if p.returncode == 0)
    got = json.loads(survivor[0])

    trials = _study(postgres, "tc").get_trials()
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    cells = sorted((t.params["width"], t.params["log2_lr"]) for t in complete)
    assert cells == sorted((w, x) for w in (32, 64) for x in (-10.0, -9.0, -8.0))  # each cell once
    failed = [t for t in trials if t.state.name == "FAIL"]
    assert [t.number for t in failed] == [victim.number]
    retry = [t for t in complete if t.system_attrs.get("retry_history") == [victim.number]]
    assert len(retry) == 1 and retry[0].params == victim.params
    assert not [t for t in trials if t.state.name in ("RUNNING", "WAITING")]
    # the result, rebuilt from the storage, equals the one-command run (same cells, same losses)
    assert got["n_runs"] == want["n_runs"] == 6
    assert got["params"]["mup"]["optima"] == want["params"]["mup"]["optima"]
    here = a if procs[0].returncode == 0 else b  # the survivor's own --out folder
    table = pd.read_csv(here / "runs.csv")
    ok = table[table["state"] == "COMPLETE"].sort_values(["d_model", "log2_lr"])
    ref_ok = pd.read_csv(ref / "runs.csv").query("state == 'COMPLETE'").sort_values(["d_model", "log2_lr"])
    assert ok["final_val_loss"].tolist() == pytest.approx(ref_ok["final_val_loss"].tolist())


def test_worker_needs_an_rdb_storage_and_an_enqueued_grid(tmp_path, fake_data):
    db = f"sqlite:///{tmp_path / 'q.db'}"
    r = run_cli("transfer-check", "--out", tmp_path / "tc", "--worker")
    assert r.returncode == 2 and "needs an RDB storage" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("transfer-check", "--out", tmp_path / "tc", "--worker", "--storage", db)
    assert r.returncode == 2 and "no transfer check tc in" in r.stderr and "--enqueue" in r.stderr
    r = run_cli("transfer-check", "--out", tmp_path / "tc", "--worker", "--storage", db, "--data", fake_data)
    assert r.returncode == 2 and "leave --data out" in r.stderr
    r = run_cli("transfer-check", "--out", tmp_path / "tc", "--enqueue", "--storage", db)
    assert r.returncode == 2 and "--enqueue needs --data" in r.stderr
    assert not (tmp_path / "tc" / "study.yaml").exists()  # nothing half-written


def test_enqueue_twice_adds_nothing_and_a_running_cell_is_not_enqueued_again(tmp_path, fake_data):
    """A second enqueuer (or a rerun) while a worker elsewhere holds a cell: no duplicate."""
    from optuna.trial import TrialState

    db = f"sqlite:///{tmp_path / 'q.db'}"
    args = ["transfer-check", "--out", tmp_path / "tc", "--data", fake_data, *GRID, "--storage", db, "--enqueue",
            "--json"]
    assert run_cli(*args).returncode == 0
    study = _study(db, "tc")
    t = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))[0]
    study._storage.set_trial_state_values(t._trial_id, TrialState.RUNNING)  # a worker elsewhere claimed it
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["target_trials"] == 6
    assert len(_study(db, "tc").get_trials(deepcopy=False)) == 6


def test_enqueue_into_a_journal_is_refused(tmp_path, fake_data):
    r = run_cli("transfer-check", "--out", tmp_path / "tc", "--data", fake_data, *GRID, "--enqueue")
    assert r.returncode == 2 and "needs an RDB storage" in r.stderr and not (tmp_path / "tc").exists()
