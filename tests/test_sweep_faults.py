"""Fault tests: kill workers mid-trial (journal file and a real PostgreSQL), Ctrl-C, then resume.

Trials here use ``tests/sweep_objectives.py:slow_bowl`` (a timed stand-in for a proxy run, so the
kill lands mid-trial); the real trainer is exercised end to end in tests/test_sweep.py.
"""
from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, run_cli, skip_or_fail

OBJ = f"{ROOT / 'tests' / 'sweep_objectives.py'}:slow_bowl"


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory) -> Path:
    """A data folder header: slow_bowl reads no tokens, the sweep only hashes meta.json."""
    d = tmp_path_factory.mktemp("faultdata")
    (d / "meta.json").write_text('{"vocab_size": 320, "sha256": "fault-test", "dtype": "uint16"}')
    return d


def _study(study: Path, url: str | None = None):
    from proxy_train.sweep_storage import open_study

    return open_study(study, url)[0]


def _popen(args, env=None):
    return subprocess.Popen([sys.executable, "-m", "scaleplan.cli", *map(str, args)], cwd=ROOT,
                            env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _wait_running(study: Path, url: str | None = None, timeout: float = 60.0, n: int = 1):
    """Wait until ``n`` trials are RUNNING and have started their run; return them."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        if (study / "study.yaml").exists():
            try:
                running = [t for t in _study(study, url).get_trials() if t.state.name == "RUNNING"
                           and "run_dir" in t.user_attrs and (study / t.user_attrs["run_dir"] / "started").exists()]
            except Exception:
                running = []
            if len(running) >= n:
                return running
        time.sleep(0.2)
    raise AssertionError("no trial started running in time")


def _check_exact(study: Path, n: int, url: str | None = None):
    trials = _study(study, url).get_trials()
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(complete) == n
    # nothing duplicated: every killed trial was retried exactly once, and its retry completed
    killed = [t for t in trials if t.state.name == "FAIL"]
    for k in killed:
        retries = [t for t in trials if t.system_attrs.get("retry_history", [None])[-1:] == [k.number]]
        assert len(retries) == 1, (k.number, [r.number for r in retries])
        assert retries[0].params == k.params
    assert not [t for t in trials if t.state.name in ("RUNNING", "WAITING")]
    return trials, killed


@pytest.mark.slow
def test_journal_kill_all_then_rerun(tmp_path, fake_data):
    """SIGKILL the whole command (parent + 2 workers) mid-trial, rerun: exactly N complete trials."""
    study = tmp_path / "j"
    args = ["sweep", "--study", study, "--data", fake_data, "--trials", "5", "--workers", "2",
            "--objective", OBJ, "--pruner", "none"]
    p = _popen(args, env={"SWEEP_FAKE_SLEEP": "20"})
    running = _wait_running(study, n=2)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait(10)
    r = run_cli(*args, "--json", env={"SWEEP_FAKE_SLEEP": "0.1"}, timeout=120)
    assert r.returncode == 0, r.stderr
    trials, killed = _check_exact(study, 5)
    assert {k.number for k in killed} == {t.number for t in running}
    assert all(k.user_attrs["fail_reason"].startswith("killed") for k in killed)


def test_ctrl_c_then_rerun(tmp_path, fake_data):
    """SIGINT (Ctrl-C) during a trial: exit 130 with a resume hint; the rerun retries that trial."""
    study = tmp_path / "c"
    args = ["sweep", "--study", study, "--data", fake_data, "--trials", "3", "--objective", OBJ,
            "--pruner", "none"]
    p = _popen(args, env={"SWEEP_FAKE_SLEEP": "20"})
    running = _wait_running(study)
    os.killpg(p.pid, signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 130 and "rerun the same command" in err
    assert "Traceback" not in err
    r = run_cli(*args, env={"SWEEP_FAKE_SLEEP": "0.1"}, timeout=120)
    assert r.returncode == 0, r.stderr
    trials, killed = _check_exact(study, 3)
    assert [k.number for k in killed] == [running[0].number]
    assert killed[0].user_attrs["fail_reason"].startswith("interrupted")


# ------------------------------------------------------------------------------------------------
# PostgreSQL
# ------------------------------------------------------------------------------------------------

def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    exe = shutil.which("pg_ctl")
    return Path(exe).parent if exe else None


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    """A throwaway PostgreSQL server on 127.0.0.1 and a free port; always stopped in teardown."""
    bindir = _pg_bin()
    if bindir is None or not (bindir / "initdb").exists():
        skip_or_fail("PostgreSQL binaries not found (Debian package postgresql)")
    import tempfile

    # Directly under /tmp: pytest's own temp root is private to the test user, but the server may
    # run as the postgres user.
    root = Path(tempfile.mkdtemp(prefix="scaleplan-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    as_user: list[str] = []
    user = os.environ.get("USER") or "postgres"
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
        as_user, user = ["runuser", "-u", "postgres", "--"], "postgres"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-U", user, "--auth=trust",
                    "-E", "UTF8"], check=True, capture_output=True, timeout=120)
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={sock} -c fsync=off"
    subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"),
                    "-w", "-t", "60", "start"], check=True, capture_output=True, timeout=90)
    try:
        yield f"postgresql://{user}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_postgres_kill_one_worker_trial_is_retried(tmp_path, fake_data, postgres):
    """2 workers on PostgreSQL; SIGKILL one mid-trial: its heartbeat stops, the other worker fails
    the stale trial, RetryHeartbeatStaleTrialCallback re-enqueues it, and the study ends with exactly
    N complete trials."""
    study = tmp_path / "pg"
    n = 4
    p = _popen(["sweep", "--study", study, "--data", fake_data, "--trials", n, "--workers", "2",
                "--objective", OBJ, "--pruner", "none", "--storage", postgres,
                "--heartbeat-interval", "1", "--grace-period", "3", "--json"],
               env={"SWEEP_FAKE_SLEEP": "4"})
    try:
        victim = _wait_running(study, url=postgres)[0]
        pid = int(victim.user_attrs["worker"].split(":")[1])
        os.kill(pid, signal.SIGKILL)
        out, err = p.communicate(timeout=180)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 0, err
    assert "exited with status -9" in err  # the parent saw the death and says the trial was retried
    trials, failed = _check_exact(study, n, url=postgres)
    assert [f.number for f in failed] == [victim.number]
    from optuna.storages import RetryHeartbeatStaleTrialCallback as R

    retry = [t for t in trials if R.retried_trial_number(t) == victim.number]
    assert len(retry) == 1 and retry[0].state.name == "COMPLETE" and R.retry_history(retry[0]) == [victim.number]
    meta = (study / "study.yaml").read_text()
    assert "postgresql://" in meta
