"""The ladder as a shared work queue: two workers started separately, one SIGKILLed mid-point; the
queue ends with every task finished exactly once and runs.csv equal to a single-worker run (journal
file and a real PostgreSQL); the SLURM array file; --status; the device flag.

The PostgreSQL server comes from tests/test_sweep_faults.py's ``postgres`` fixture (imported).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, run_cli, skip_or_fail, tiny_proxy_inputs
from test_sweep_faults import postgres  # noqa: F401  (the fixture: a throwaway server)

# 2 sizes x 2 budgets, WSD: one task per size (its stable phase + 2 cooldown branches)
TINY = ["--sizes", "16:1,32:1", "--tokens-per-param", "4,8", "--batch", "8", "--seq-len", "32"]
COMPARED = ["run_id", "total_params", "non_embedding_params", "tokens", "flops", "final_val_loss",
            "final_train_loss", "status", "steps", "compute_used", "lr", "run_dir"]


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("ladderq")
    data, hparams = tiny_proxy_inputs(root)
    return {"root": root, "data": data, "hparams": hparams}


def _enqueue(toy, study: Path, *extra) -> None:
    """`scaleplan ladder ... --enqueue` in this process (the CLI's exit codes are checked elsewhere)."""
    from scaleplan.cli import main

    argv = ["ladder", "--study", study, "--data", toy["data"], "--hparams", toy["hparams"], *TINY, "--enqueue", *extra]
    assert main([str(a) for a in argv]) == 0


@pytest.fixture(scope="module")
def reference(toy):
    """The same ladder drained by one worker process: its runs.csv."""
    study = toy["root"] / "ref"
    _enqueue(toy, study)
    r = run_cli("ladder", "--study", study, "--worker", "--workers", "1", "--device", "cpu", "--no-check")
    assert r.returncode == 0, r.stderr[-2000:]
    return pd.read_csv(study / "runs.csv")


def _worker(study: Path, url: str | None, *extra) -> subprocess.Popen:
    env = {**os.environ, "SCALEPLAN_SWEEP_STORAGE": url} if url else None
    return subprocess.Popen([sys.executable, "-m", "scaleplan.cli", "ladder", "--study", str(study), "--worker",
                             "--workers", "1", "--device", "cpu", "--no-check", *extra], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _queue(study: Path, url: str):
    from proxy_train.ladder_queue import open_queue

    return open_queue(study, url, heartbeat_interval=None)


def _wait_checkpointed(study: Path, url: str, timeout: float = 90.0):
    """A RUNNING trial whose task has written a checkpoint: (trial, worker pid)."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            for t in _queue(study, url).get_trials(deepcopy=False):
                key, owner = t.user_attrs.get("ladder_task"), t.user_attrs.get("worker")
                if t.state.name == "RUNNING" and owner and list((study / "runs" / key).rglob("ckpt.pt")):
                    return t, int(owner.rsplit(":", 1)[1])
        except Exception:  # the journal or schema is being created
            pass
        time.sleep(0.1)
    raise AssertionError("no task checkpointed in time")


def _kill_one_and_drain(toy, study: Path, url: str | None, *extra):
    store = url or f"journal://{(study / 'optuna.journal').resolve()}"
    _enqueue(toy, study, *(["--storage", url] if url else []), *extra)
    a, b = _worker(study, url, *extra), _worker(study, url, *extra)
    try:
        victim, pid = _wait_checkpointed(study, store)
        assert pid in (a.pid, b.pid)
        killed, survivor = (a, b) if pid == a.pid else (b, a)
        os.kill(pid, signal.SIGKILL)
        killed.wait(10)  # reaped: a dead pid, not a zombie
        out, err = survivor.communicate(timeout=120)
    finally:
        for p in (a, b):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
    assert survivor.returncode == 0, err[-3000:]
    return victim, store


def _check_exactly_once(study: Path, store: str, victim, reference: pd.DataFrame) -> None:
    from optuna.storages import RetryHeartbeatStaleTrialCallback as R

    trials = _queue(study, store).get_trials(deepcopy=False)
    complete = [t.user_attrs["ladder_task"] for t in trials if t.state.name == "COMPLETE"]
    assert sorted(complete) == ["d16-L1", "d32-L1"]  # every task finished, exactly once
    failed = [t for t in trials if t.state.name == "FAIL"]
    assert [f.number for f in failed] == [victim.number]  # only the killed worker's trial
    retry = [t for t in trials if R.retried_trial_number(t) == victim.number]
    assert len(retry) == 1 and retry[0].state.name == "COMPLETE"
    assert retry[0].user_attrs["ladder_task"] == victim.user_attrs["ladder_task"]
    assert retry[0].user_attrs["resumed_from"]  # the new owner found the killed worker's checkpoint
    assert all(not t.user_attrs.get("resumed_from") for t in trials if t.number not in (retry[0].number,))
    assert not [t for t in trials if t.state.name in ("RUNNING", "WAITING")]
    got = pd.read_csv(study / "runs.csv")
    assert len(got) == 4 and (got["status"] == "ok").all()
    pd.testing.assert_frame_equal(got[COMPARED], reference[COMPARED])  # same rows, same losses


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_journal_two_workers_one_killed(toy, reference, tmp_path):
    study = tmp_path / "jq"
    victim, store = _kill_one_and_drain(toy, study, None)
    _check_exactly_once(study, store, victim, reference)
    killed = [t for t in _queue(study, store).get_trials(deepcopy=False) if t.state.name == "FAIL"][0]
    assert killed.user_attrs["fail_reason"].startswith("killed: worker")


@pytest.mark.e2e
@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_postgres_two_workers_one_killed(toy, reference, tmp_path, postgres):  # noqa: F811
    """Same, through PostgreSQL: the killed worker's heartbeat stops, the survivor fails the stale
    trial and RetryHeartbeatStaleTrialCallback re-enqueues it; the survivor resumes it."""
    study = tmp_path / "pgq"
    victim, store = _kill_one_and_drain(toy, study, postgres, "--heartbeat-interval", "1", "--grace-period", "3")
    _check_exactly_once(study, store, victim, reference)
    failed = [t for t in _queue(study, store).get_trials(deepcopy=False) if t.state.name == "FAIL"][0]
    assert "fail_reason" not in failed.user_attrs  # failed by fail_stale_trials (heartbeat), not by a pid check
    r = run_cli("ladder", "--study", study, "--storage", postgres, "--status", "--json")
    assert r.returncode == 0, r.stderr
    import json

    st = json.loads(r.stdout)
    assert st["counts"] == {"done": 2, "running": 0, "failed": 0, "retried": 1, "queued": 0}


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_ctrl_c_worker_gives_its_task_back(toy, tmp_path):
    """SIGINT: the worker stops at a step boundary, checkpoints, re-enqueues its task and exits 130."""
    study = tmp_path / "int"
    _enqueue(toy, study)
    store = f"journal://{(study / 'optuna.journal').resolve()}"
    w = _worker(study, None)
    try:
        victim, pid = _wait_checkpointed(study, store)
        os.kill(pid, signal.SIGINT)
        _, err = w.communicate(timeout=60)
    finally:
        if w.poll() is None:
            os.killpg(w.pid, signal.SIGKILL)
    assert w.returncode == 130 and "Traceback" not in err
    trials = {t.number: t for t in _queue(study, store).get_trials(deepcopy=False)}
    assert trials[victim.number].state.name == "FAIL"
    assert trials[victim.number].user_attrs["fail_reason"].startswith("interrupted")
    back = [t for t in trials.values() if t.system_attrs.get("retry_history") == [victim.number]]
    assert len(back) == 1 and back[0].state.name == "WAITING"
    assert list((study / "runs" / victim.user_attrs["ladder_task"]).rglob("ckpt.pt"))  # kept for the next owner


def test_status_shows_running_worker_host_and_queued(toy, tmp_path):
    """--status from the storage alone: a claimed task shows its worker, the rest are queued."""
    import socket

    from proxy_train.ladder_queue import claim

    study = tmp_path / "st"
    _enqueue(toy, study)
    url = f"journal://{(study / 'optuna.journal').resolve()}"
    q = _queue(study, url)
    t = claim(q)
    q._storage.set_trial_user_attr(t._trial_id, "worker", f"{socket.gethostname()}:{os.getpid()}")
    q._storage.set_trial_user_attr(t._trial_id, "worker_host", socket.gethostname())
    r = run_cli("ladder", "--study", study, "--status")
    assert r.returncode == 0, r.stderr
    assert "0 done, 1 running, 0 failed, 1 queued" in r.stdout
    assert f"running d32-L1 (trial 0) on {socket.gethostname()}:{os.getpid()}" in r.stdout
    assert "queued  d16-L1 (trial 1)" in r.stdout
    assert claim(q).number == 1 and claim(q) is None  # each waiting trial is handed out once


def test_enqueue_twice_adds_nothing_and_other_options_are_refused(toy, tmp_path):
    study = tmp_path / "twice"
    _enqueue(toy, study)
    _enqueue(toy, study)
    assert len(_queue(study, f"journal://{(study / 'optuna.journal').resolve()}").get_trials()) == 2
    r = run_cli("ladder", "--study", study, "--data", toy["data"], "--hparams", toy["hparams"],
                "--sizes", "16:1,24:1", "--tokens-per-param", "4,8", "--batch", "8", "--seq-len", "32", "--enqueue")
    assert r.returncode == 2 and "holds another ladder" in r.stderr and "Traceback" not in r.stderr


def test_unreachable_runs_root_is_a_clear_error(toy, tmp_path):
    """A runs root a worker cannot create or write (here: below a file; also what a missing shared
    mount looks like to a non-root user) is a one-line UserError naming the folder and the host."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    r = run_cli("ladder", "--study", tmp_path / "s", "--data", toy["data"], "--hparams", toy["hparams"], *TINY,
                "--enqueue", "--runs-root", blocker / "runs")
    assert r.returncode == 2 and "is not writable from" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "s" / "optuna.journal").exists()  # nothing half-written


# ------------------------------------------------------------------------------------------ SLURM
def test_sbatch_file(toy, tmp_path):
    """The array job: valid bash, one worker per array task with its resources, the worker command."""
    import shlex

    if shutil.which("bash") is None:
        skip_or_fail("bash not found")
    study, out = tmp_path / "sb", tmp_path / "ladder.sbatch"
    url = "postgresql://scaleplan@db.example:5432/ladders"
    r = run_cli("ladder", "--study", study, "--storage", url, "--emit-sbatch", out, "--array-tasks", "6",
                "--device", "cuda", "--threads", "4", "--time", "02:30:00", "--partition", "gpu q",
                "--runs-root", "/shared/runs dir", "--mem", "16G")
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert subprocess.run(["bash", "-n", str(out)], capture_output=True).returncode == 0
    sb = [ln for ln in text.splitlines() if ln.startswith("#SBATCH")]
    assert sb == ["#SBATCH --job-name=ladder-sb", "#SBATCH --array=0-5", "#SBATCH --ntasks=1",
                  "#SBATCH --cpus-per-task=4", "#SBATCH --gres=gpu:1", "#SBATCH --time=02:30:00",
                  "#SBATCH --output=slurm-%x-%A_%a.out", "#SBATCH --partition='gpu q'", "#SBATCH --mem=16G"]
    cmd = shlex.split([ln for ln in text.splitlines() if ln.startswith("exec ")][0])[1:]
    assert cmd[:4] == [sys.executable, "-m", "scaleplan.cli", "ladder"]
    opts = dict(zip(cmd[4::1], cmd[5::1]))
    assert opts["--study"] == str(study.resolve()) and opts["--workers"] == "1" and opts["--device"] == "cuda"
    assert opts["--threads"] == "4" and opts["--runs-root"] == "/shared/runs dir" and opts["--storage"] == url
    assert "--worker" in cmd and "export OMP_NUM_THREADS=4" in text
    # --dry-run prints the same file; a CPU job asks for no GPU; a password never lands in the file
    r = run_cli("ladder", "--study", study, "--storage", "postgresql://u:secret@h/db", "--emit-sbatch", out,
                "--dry-run", "--array-tasks", "2", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert "secret" not in r.stdout and "--gres" not in r.stdout and "SCALEPLAN_SWEEP_STORAGE:?" in r.stdout
    assert "--storage" not in r.stdout.split("exec ", 1)[1]
    r = run_cli("ladder", "--study", study, "--emit-sbatch", out, "--array-tasks", "2", "--time", "soon")
    assert r.returncode == 2 and "--time must be a SLURM time" in r.stderr


# ------------------------------------------------------------------------------------------ device
def test_device_helpers():
    from proxy_train.device import PEAK_BF16_FLOPS, peak_flops, throughput, worker_env

    env = worker_env(3, "cuda", 2, env={})
    assert env["CUDA_VISIBLE_DEVICES"] == "1"
    assert worker_env(1, "cuda", 2, env={"CUDA_VISIBLE_DEVICES": "4,6"})["CUDA_VISIBLE_DEVICES"] == "6"
    assert "CUDA_VISIBLE_DEVICES" not in worker_env(1, "cpu", 4, env={})
    assert peak_flops("cuda", "NVIDIA H100 80GB HBM3") == PEAK_BF16_FLOPS["H100"] == 989.4e12
    assert peak_flops("cuda", "NVIDIA L40S") == 362.05e12 and peak_flops("cpu") is None
    th = throughput({"tokens_per_s": 1e6, "tokens": 100, "flops_with_attention": 100 * 600e3, "device": "cuda"},
                    "NVIDIA A100-SXM4-80GB")
    assert th["mfu"] == pytest.approx(1e6 * 600e3 / 312e12)


def test_cpu_worker_records_tokens_per_s(toy, reference, tmp_path):
    from proxy_train.ladder_queue_results import queue_status

    st = queue_status(toy["root"] / "ref", f"journal://{(toy['root'] / 'ref' / 'optuna.journal').resolve()}")
    assert all(d["tokens_per_s"] > 0 and d["mfu"] is None for d in st["done"])  # no agreed CPU peak


def test_device_cuda_without_a_gpu_is_refused_before_claiming(toy, tmp_path):
    import torch

    study = tmp_path / "nogpu"
    _enqueue(toy, study)
    r = run_cli("ladder", "--study", study, "--worker", "--workers", "1", "--device", "cuda", "--no-check")
    if torch.cuda.is_available():
        assert r.returncode == 0, r.stderr[-2000:]
    else:
        assert r.returncode == 2 and "sees no CUDA GPU" in r.stderr and "Traceback" not in r.stderr
        states = [t.state.name for t in _queue(study, f"journal://{(study / 'optuna.journal').resolve()}").get_trials()]
        assert states == ["WAITING", "WAITING"]  # nothing claimed, nothing failed


@pytest.mark.gpu
def test_cuda_worker_same_code_on_gpu(toy, tmp_path):
    """The same queue worker on CUDA (bf16 autocast) finishes the ladder with an MFU. Marked ``gpu``:
    deselected by default (pyproject addopts), run on a machine with a GPU by
    ``pytest -m gpu tests/test_ladder_queue.py``, where a missing GPU is a failure, not a skip."""
    import torch

    assert torch.cuda.is_available(), "pytest -m gpu needs a CUDA GPU"
    study = tmp_path / "gpu"
    _enqueue(toy, study)
    r = run_cli("ladder", "--study", study, "--worker", "--workers", "1", "--device", "cuda", "--no-check")
    assert r.returncode == 0, r.stderr[-2000:]
    from proxy_train.ladder_queue_results import queue_status

    st = queue_status(study, f"journal://{(study / 'optuna.journal').resolve()}")
    assert st["counts"]["done"] == 2
    runs = pd.read_csv(study / "runs.csv")
    assert (runs["status"] == "ok").all()
    import json

    rec = json.loads(next((study / "runs").rglob("run.json")).read_text())
    assert rec["device"].startswith("cuda") and rec["throughput"]["tokens_per_s"] > 0


def test_spec_round_trips_through_the_storage_record(toy):
    """Workers rebuild the ladder from the queue's ``ladder_spec`` alone: the same spec, the same tasks."""
    import json

    from proxy_train.ladder_plan import load_spec, plan_points
    from proxy_train.ladder_queue import spec_from_dict, spec_to_dict
    from proxy_train.ladder_tasks import tasks_for

    spec = load_spec(data=str(toy["data"]), hparams=str(toy["hparams"]), sizes="auto", n_sizes=3,
                     n_range=(2e3, 2e4), tokens_per_param="2,4", batch=8, seq_len=32, holdout_extra=True)
    back = spec_from_dict(json.loads(json.dumps(spec_to_dict(spec))))  # what a JSON storage gives back
    assert back == spec
    keys = [t.key for t in tasks_for(back, plan_points(back)[0], Path("/r"))]
    assert keys == [t.key for t in tasks_for(spec, plan_points(spec)[0], Path("/r"))] and len(keys) >= 3


def test_dry_run_with_a_ladder_prints_one_task_per_array_entry_and_writes_nothing(toy, tmp_path):
    """--dry-run plans the ladder to size the array but enqueues and creates nothing (no study folder,
    no journal, no runs root)."""
    work = tmp_path / "dry"
    work.mkdir()
    r = run_cli("ladder", "--study", work / "study", "--data", toy["data"], "--hparams", toy["hparams"], *TINY,
                "--emit-sbatch", work / "x.sbatch", "--runs-root", work / "runs", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert list(work.iterdir()) == []
    _enqueue(toy, tmp_path / "real")  # the same ladder enqueued for real: one array entry per task
    n = len(_queue(tmp_path / "real", f"journal://{(tmp_path / 'real' / 'optuna.journal').resolve()}").get_trials())
    assert f"#SBATCH --array=0-{n - 1}\n" in r.stdout and "--worker" in r.stdout
