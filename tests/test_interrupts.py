"""Interrupts change nothing (issue 18): Ctrl-C stops `scaleplan train` at a step boundary and the
rerun equals an uninterrupted run bit for bit; workers never outlive a SIGKILLed parent.

The mechanisms are in proxy_train/interrupts.py (graceful_sigint, die_with_parent); the ladder's
Ctrl-C test is in tests/test_ladder.py (it reuses that file's toy ladder as the reference).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, run_cli
from proxy_data import tiny_data

# tiny model, long enough (2000 steps) that the SIGINT lands mid-run; checkpoint every 100 steps
TRAIN = ["--d-model", "32", "--n-layers", "1", "--head-dim", "16", "--base-width", "32", "--steps", "2000",
         "--batch", "4", "--seq-len", "32", "--eval-every", "100", "--device", "cpu"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tiny_data(tmp_path_factory)


def _popen(args, **kw):
    return subprocess.Popen([sys.executable, "-m", "scaleplan.cli", *map(str, args)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, **kw)


def _wait_for(path: Path, proc, timeout: float = 120.0) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, f"finished before {path.name} appeared: {proc.stderr.read()[-2000:]}"
        assert time.time() < deadline, f"{path} did not appear in {timeout} s"
        time.sleep(0.02)


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (killed, waiting to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def kill_parent_then_expect_gone(proc, pids, within: float = 5.0) -> None:
    """SIGKILL ``proc`` alone; assert that every process in ``pids`` is gone ``within`` seconds."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    deadline = time.time() + within
    while any(alive(pid) for pid in pids) and time.time() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in pids if alive(pid)], "workers outlived their parent"


def kill_group(proc) -> None:
    """Clean-up: SIGKILL whatever is left of ``proc``'s process group (its workers share it)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(10)


@pytest.fixture
def fake_data(tmp_path) -> Path:
    """A data folder header: the sweep's slow_bowl objective reads no tokens, only meta.json."""
    d = tmp_path / "data"
    d.mkdir()
    (d / "meta.json").write_text('{"vocab_size": 320, "sha256": "interrupt-test", "dtype": "uint16"}')
    return d


def test_resume_after_sigint_equals_an_uninterrupted_run(data_dir, tmp_path):
    ref = run_cli("train", "--data", data_dir, *TRAIN, "--out", tmp_path / "ref")
    assert ref.returncode == 0, ref.stderr[-2000:]
    args = ["train", "--data", data_dir, *TRAIN, "--out", tmp_path / "run"]
    p = _popen(args)
    _wait_for(tmp_path / "run" / "ckpt.pt", p)  # after the first checkpoint (step 100)
    time.sleep(0.13)  # land somewhere between two checkpoints
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "rerun the same command" in err
    stopped = json.loads((tmp_path / "run" / "run.json").read_text())
    assert stopped["status"] == "stopped" and 100 <= stopped["steps"] < 2000
    assert f"interrupted (stopped at step {stopped['steps']}, checkpointed)" in err
    assert stopped["curve"]["train"][-1][0] == stopped["steps"]  # the record ends on a whole step
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads((tmp_path / "run" / "run.json").read_text())
    want = json.loads((tmp_path / "ref" / "run.json").read_text())
    assert got["status"] == "ok" and got["steps"] == 2000
    for key in ("final_val_loss", "final_train_loss", "curve"):
        assert got[key] == want[key], key  # exactly equal: same computation, bit for bit on CPU


def test_an_exception_mid_step_keeps_the_last_whole_step_checkpoint(data_dir, tmp_path, monkeypatch):
    """A hard interrupt (second Ctrl-C) inside a step, after the optimizer moved: no checkpoint of that
    half-done state is written, the periodic one stays, and the resumed run is still exact."""
    import torch

    from proxy_train.config import TrainConfig
    from proxy_train.train import train
    from proxy_train.trainer import Trainer

    torch.set_num_threads(1)
    cfg = TrainConfig(data=str(data_dir), d_model=32, n_layers=1, head_dim=16, base_width=32, batch=4, seq_len=32,
                      steps=60, eval_every=20, progress=False)
    ref = train(cfg, tmp_path / "ref")
    real_step = Trainer.train_step

    def step_then_interrupt(self, lr_mult):
        loss = real_step(self, lr_mult)
        if self.step == 30:  # model and optimizer moved, curve not yet written: mid-step
            raise KeyboardInterrupt
        return loss

    monkeypatch.setattr(Trainer, "train_step", step_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "run")
    rec = json.loads((tmp_path / "run" / "run.json").read_text())
    assert rec["status"] == "stopped"
    saved = torch.load(tmp_path / "run" / "ckpt.pt", weights_only=True)
    assert int(saved["step"]) == 20  # the periodic checkpoint, not step 30's half-done state
    monkeypatch.setattr(Trainer, "train_step", real_step)
    done = train(cfg, tmp_path / "run")
    assert done["status"] == "ok"
    assert (done["final_val_loss"], done["curve"]) == (ref["final_val_loss"], ref["curve"])


def test_sweep_workers_die_with_a_killed_parent(tmp_path, fake_data):
    """SIGKILL only the `scaleplan sweep` parent: both worker processes are gone within seconds."""
    from test_sweep_faults import OBJ, _wait_running

    study = tmp_path / "s"
    p = _popen(["sweep", "--study", study, "--data", fake_data, "--trials", "4", "--workers", "2", "--objective",
                OBJ, "--pruner", "none"], env={**os.environ, "SWEEP_FAKE_SLEEP": "30"})
    try:
        running = _wait_running(study, n=2)
        pids = {int(t.user_attrs["worker"].split(":")[1]) for t in running}
        assert len(pids) == 2 and os.getpid() not in pids and p.pid not in pids
        lock = (study / ".sweep.lock").read_text().split()
        assert lock[0] == str(p.pid) and set(lock[1:]) == {str(pid) for pid in pids}  # every worker named
        kill_parent_then_expect_gone(p, pids)
    finally:
        kill_group(p)


def test_ctrl_c_stops_a_sweep_with_workers_within_seconds(tmp_path, fake_data):
    """SIGINT to the `scaleplan sweep --workers 2` parent only: it passes the stop on, exits 130
    within seconds with no worker left, says what was kept, and the rerun reaches the target."""
    from test_sweep_faults import OBJ, _check_exact, _wait_running

    study = tmp_path / "s"
    args = ["sweep", "--study", study, "--data", fake_data, "--trials", "3", "--workers", "2", "--objective", OBJ,
            "--pruner", "none"]
    p = _popen(args, env={**os.environ, "SWEEP_FAKE_SLEEP": "60"})
    try:
        running = _wait_running(study, n=2)
        pids = {int(t.user_attrs["worker"].split(":")[1]) for t in running}
        t0 = time.time()
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=40)
        elapsed = time.time() - t0
    finally:
        kill_group(p)
    assert p.returncode == 130 and "Traceback" not in err, err[-2000:]
    assert elapsed < 15 and "sweep interrupted: 0 finished trial(s) kept" in err, (elapsed, err[-2000:])
    assert not [pid for pid in pids if alive(pid)]
    # one worker resumes: with two, a trial still running when the target is reached is stopped and
    # (rightly) never retried, which _check_exact would count as a lost trial
    rerun = [a if a != "2" or args[i - 1] != "--workers" else "1" for i, a in enumerate(args)]
    r = run_cli(*rerun, env={"SWEEP_FAKE_SLEEP": "0.1"}, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    _, killed = _check_exact(study, 3)
    assert {k.number for k in killed} == {t.number for t in running}
    assert all(k.user_attrs["fail_reason"].startswith("interrupted") for k in killed)


def test_die_with_parent_uses_the_kernel_on_linux():
    """The mechanism the module docstring names: prctl(PR_SET_PDEATHSIG) on Linux."""
    code = ("from proxy_train.interrupts import die_with_parent; import ctypes, sys; "
            "print(die_with_parent())")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ("prctl" if sys.platform.startswith("linux") else "watchdog")
