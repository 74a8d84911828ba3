"""Optuna storage and worker processes for sweeps: exactly N finished trials, nothing lost.

Conventions (what ``--trials N`` means):

* A trial is **finished** when it is COMPLETE or PRUNED (a diverged proxy run is pruned, with the
  reason in the user attribute ``fail_reason``). A study stops when it holds ``N`` finished trials.
  With ``count_failed=True`` (the μTransfer grid, where every grid point must be visited once)
  trials that FAILED with a real error count too.
* Trials that FAILED because their process was killed or interrupted do not count: they are
  retried with the same parameters. Under an RDB storage (PostgreSQL, MySQL, SQLite) each worker
  sends a heartbeat; a trial whose heartbeat stops is failed by a surviving worker and re-enqueued
  by Optuna's ``RetryHeartbeatStaleTrialCallback(max_retry=3)``. The journal file storage has no
  heartbeat (optuna/storages/_heartbeat.py: only RDBStorage implements ``BaseHeartbeat``), so the
  next ``scaleplan sweep`` on the same folder fails the trials a killed process left RUNNING and
  re-enqueues them with the same callback, i.e. with the same ``retry_history`` lineage.
* No overshoot with several workers: after each trial a worker stops once ``N`` trials are
  finished, and *waits* while the running trials of other workers already fill the remaining slots
  (one of them may die and need a retry). At a trial's start a worker re-checks the count; of two
  workers that raced for the last slot the one with the higher trial number gives its trial up
  (FAIL, ``fail_reason = "surplus: ..."``), so finished trials never exceed ``N``.

The worker entry point is ``python -m proxy_train.workers --study DIR --worker-id I --trials N``
(started by ``scaleplan sweep --workers W``). It reads the study's ``study.yaml``; the storage
URL comes from the environment variable ``SCALEPLAN_SWEEP_STORAGE`` so that a password never
appears in a process list.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Callable

from planner.errors import UserError
from planner.provenance import mask_url

STORAGE_ENV = "SCALEPLAN_SWEEP_STORAGE"
JOURNAL_NAME = "optuna.journal"
RDB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "oracle", "mssql")

# fail_reason prefixes of trials that are retried (not real errors) or ignored (surplus).
KILLED = "killed"
INTERRUPTED = "interrupted"
SURPLUS = "surplus"
RETRIABLE = (KILLED, INTERRUPTED)


# ----------------------------------------------------------------------------------------------
# storage
# ----------------------------------------------------------------------------------------------

def is_rdb(url: str | None) -> bool:
    return bool(url) and url.split(":", 1)[0].split("+", 1)[0].lower() in RDB_SCHEMES


def journal_url(study_dir: Path) -> str:
    """The default storage: an Optuna journal file inside the study folder."""
    return f"journal://{(Path(study_dir) / JOURNAL_NAME).resolve()}"


def open_storage(url: str, *, heartbeat_interval: int | None = None, grace_period: int | None = None,
                 connect_timeout: int = 5):
    """Open an Optuna storage from a URL; bad or unreachable storage -> one-line ``UserError``.

    ``journal:///abs/path`` (or a path ending in ``.journal``) -> ``JournalStorage`` with a file
    backend (one host, several processes). ``sqlite:///``, ``postgresql://``, ``mysql://`` ->
    ``RDBStorage``; with ``heartbeat_interval`` the workers send heartbeats and stale trials are
    retried by ``RetryHeartbeatStaleTrialCallback(max_retry=3)``. ``connect_timeout`` (seconds)
    keeps an unreachable server from hanging the command.
    """
    import optuna

    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "journal" or (not scheme and url.endswith(".journal")):
        from optuna.storages.journal import JournalFileBackend

        path = Path(url.split("://", 1)[1] if scheme else url)  # journal:///abs/path -> /abs/path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
        except OSError as e:
            raise UserError(f"cannot open journal storage {path} ({e.strerror}); choose a writable "
                            "--study folder") from None
        except ValueError as e:  # json.JSONDecodeError: a record in the middle is not JSON
            raise UserError(f"journal {path} is corrupt ({e}); restore it from a backup or start a new "
                            "--study folder") from None
    base = scheme.split("+", 1)[0]
    if base not in RDB_SCHEMES:
        raise UserError(f"unknown storage URL {mask_url(url)!r}; use an Optuna storage URL "
                        "(postgresql://user:pass@host/db, mysql://..., sqlite:///file.db) or leave "
                        "--storage out for a journal file in the study folder")
    connect_args: dict = {}
    if base in ("postgresql", "postgres", "mysql", "mariadb"):
        connect_args["connect_timeout"] = connect_timeout
    elif base == "sqlite":
        connect_args["timeout"] = 30  # waits on "database is locked" (Optuna FAQ)
    kwargs: dict = {"engine_kwargs": {"connect_args": connect_args}}
    import warnings

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    if heartbeat_interval:
        kwargs.update(
            heartbeat_interval=int(heartbeat_interval),
            grace_period=int(grace_period or 2 * heartbeat_interval),
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3),
        )
    if base == "postgres":  # SQLAlchemy 2 only knows the long name
        url = "postgresql" + url[len("postgres"):]
        scheme = "postgresql" + scheme[len("postgres"):]
    if scheme == "postgresql":
        # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; use psycopg2 when only it is there.
        import importlib.util

        if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
            url = "postgresql+psycopg2" + url[len("postgresql"):]
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # RetryHeartbeatStaleTrialCallback is "experimental"
            return optuna.storages.RDBStorage(url, **kwargs)
    except ImportError as e:
        raise UserError(f"storage {mask_url(url)}: database driver missing ({e.name or e}); "
                        "install it (e.g. psycopg2-binary for postgresql, pymysql for mysql)") from None
    except ModuleNotFoundError as e:  # pragma: no cover - covered by ImportError
        raise UserError(f"storage {mask_url(url)}: {e}") from None
    except Exception as e:  # sqlalchemy OperationalError / ArgumentError / NoSuchModuleError ...
        first = (str(getattr(e, "orig", None) or e).strip().splitlines() or [type(e).__name__])[0]
        raise UserError(f"cannot use storage {mask_url(url)}: {first}; check the URL, that the "
                        "server runs and accepts connections, and the user/password/database") from None


# ----------------------------------------------------------------------------------------------
# counting trials
# ----------------------------------------------------------------------------------------------

def fail_reason(t) -> str:
    return str(t.user_attrs.get("fail_reason", "") or "")


def is_counted(t, count_failed: bool = False) -> bool:
    """Whether a trial counts towards ``--trials N`` (see the module docstring)."""
    from optuna.trial import TrialState

    if t.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    if count_failed and t.state == TrialState.FAIL:
        reason = fail_reason(t)
        return bool(reason) and not reason.startswith(RETRIABLE + (SURPLUS,))
    return False


def counts(study, count_failed: bool = False) -> dict:
    """Trial counts: finished (counted), running, waiting, complete, pruned, failed, errors."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    out = {"finished": 0, "running": 0, "waiting": 0, "complete": 0, "pruned": 0, "failed": 0,
           "errors": 0}
    for t in trials:
        out["finished"] += is_counted(t, count_failed)
        out["running"] += t.state == TrialState.RUNNING
        out["waiting"] += t.state == TrialState.WAITING
        out["complete"] += t.state == TrialState.COMPLETE
        out["pruned"] += t.state == TrialState.PRUNED
        if t.state == TrialState.FAIL:
            out["failed"] += 1
            r = fail_reason(t)
            out["errors"] += not r.startswith(RETRIABLE + (SURPLUS,))
    return out


def best_value(study) -> float | None:
    from optuna.trial import TrialState

    vals = [t.value for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.value is not None]
    return min(vals) if vals else None


# ----------------------------------------------------------------------------------------------
# resume: trials left RUNNING / interrupted by a dead process
# ----------------------------------------------------------------------------------------------

def repair_and_requeue(study, target: int, *, fail_running: bool, count_failed: bool = False) -> dict:
    """Prepare a study for a rerun. Returns ``{"failed_running": [...], "requeued": [...]}``.

    With ``fail_running`` (journal storage, where no heartbeat exists and no other process may be
    using the study) RUNNING trials are marked FAIL with ``fail_reason = "killed: ..."``. Every
    killed or interrupted trial that has not been retried yet is re-enqueued with the same
    parameters (``RetryHeartbeatStaleTrialCallback`` lineage) while slots remain below ``target``.
    """
    import optuna
    from optuna.trial import TrialState
    import warnings

    storage = study._storage
    failed_now = []
    if fail_running:
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            try:
                storage.set_trial_user_attr(t._trial_id, "fail_reason",
                                            f"{KILLED}: left RUNNING by a stopped process")
                storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
                failed_now.append(t.number)
            except Exception:  # finished meanwhile: nothing to repair
                pass
    trials = study.get_trials(deepcopy=False)
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    c = counts(study, count_failed)
    free = target - c["finished"] - c["running"] - c["waiting"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3)
        requeued = []
        for t in study.get_trials(deepcopy=True, states=(TrialState.FAIL,)):
            if free <= 0:
                break
            if t.number in retried or not fail_reason(t).startswith(RETRIABLE) or not t.params:
                continue
            clean = optuna.trial.FrozenTrial(
                number=t.number, state=t.state, value=None, values=None,
                datetime_start=t.datetime_start, datetime_complete=t.datetime_complete,
                params=t.params, distributions=t.distributions,
                user_attrs={k: v for k, v in t.user_attrs.items() if k != "fail_reason"},
                system_attrs=t.system_attrs, intermediate_values={}, trial_id=t._trial_id)
            before = len(study.get_trials(deepcopy=False))
            retry(study, clean)
            if len(study.get_trials(deepcopy=False)) > before:
                requeued.append(t.number)
                free -= 1
    return {"failed_running": failed_now, "requeued": requeued}


# ----------------------------------------------------------------------------------------------
# the worker loop
# ----------------------------------------------------------------------------------------------

class Surplus(Exception):
    """This trial is not needed: other workers already fill the last slots."""


class TooManyErrors(RuntimeError):
    pass


class TargetGuard:
    """Optuna callback + trial-start check that make a study end with exactly ``target`` trials."""

    def __init__(self, target: int, *, count_failed: bool = False, poll_s: float = 0.5,
                 max_errors: int | None = None, on_trial: Callable | None = None):
        self.target = target
        self.count_failed = count_failed
        self.poll_s = poll_s
        self.max_errors = max_errors if max_errors is not None else max(5, target)
        self.on_trial = on_trial

    def check_start(self, study, trial) -> None:
        """Raise ``Surplus`` if the finished plus earlier-numbered running trials fill the target."""
        from optuna.trial import TrialState

        ahead = 0
        for t in study.get_trials(deepcopy=False):
            if t.number == trial.number:
                continue
            if is_counted(t, self.count_failed):
                ahead += 1
            elif t.state == TrialState.RUNNING and t.number < trial.number:
                ahead += 1
        if ahead >= self.target:
            raise Surplus(f"{SURPLUS}: the other workers already fill the {self.target} trials")

    def __call__(self, study, frozen) -> None:
        import optuna

        if self.on_trial is not None:
            self.on_trial(study, frozen)
        while True:
            try:
                optuna.storages.fail_stale_trials(study)  # RDB + heartbeat only; else a no-op
            except Exception:
                pass
            c = counts(study, self.count_failed)
            if c["errors"] >= self.max_errors:
                study.stop()
                raise TooManyErrors(f"{c['errors']} trials failed with errors (last: "
                                    f"{fail_reason(frozen) or 'see trials table'}); fix the cause "
                                    "and rerun the same command to resume")
            if c["finished"] >= self.target:
                study.stop()
                return
            if c["finished"] + c["running"] < self.target:
                return  # a slot is free: ask the next (or a waiting, retried) trial
            time.sleep(self.poll_s)  # other workers' running trials fill the target: watch them


def derived_seed(seed: int, worker_id: int, n_existing: int) -> int:
    """Per-worker sampler seed: workers and resumed runs must not replay the same random draws."""
    return (int(seed) * 1_000_003 + worker_id * 7919 + n_existing * 104_729) % (2 ** 31 - 1)


def run_worker(study_dir: str | Path, *, worker_id: int, trials: int, storage_url: str | None = None,
               progress: Callable | None = None) -> dict:
    """Run one worker on an existing study until it holds ``trials`` finished trials."""
    from proxy_train import sweep

    study_dir = Path(study_dir)
    meta = sweep.read_study_meta(study_dir)
    url = storage_url or os.environ.get(STORAGE_ENV) or meta["storage"]
    if url == "journal":
        url = journal_url(study_dir)
    spec = meta["spec"]
    study = sweep.load_study(study_dir, url, spec, worker_id=worker_id)
    guard = TargetGuard(trials, count_failed=spec.get("count_failed", False), on_trial=progress,
                        poll_s=float(spec.get("poll_s", 0.5)))
    if counts(study, guard.count_failed)["finished"] >= trials:
        return counts(study, guard.count_failed)
    objective = sweep.make_objective(study_dir, spec, guard, worker_id=worker_id)
    import optuna
    import warnings

    # Failures are recorded per trial (fail_reason) and counted in the progress bar; Optuna's own
    # WARNING log would print a traceback per failed trial.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=optuna.exceptions.ExperimentalWarning)
        study.optimize(objective, n_trials=None, callbacks=[guard], catch=(Exception,),
                       gc_after_trial=False)
    return counts(study, guard.count_failed)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m proxy_train.workers",
                                description="One sweep worker process (started by `scaleplan sweep --workers`).")
    p.add_argument("--study", required=True)
    p.add_argument("--worker-id", type=int, default=0)
    p.add_argument("--trials", type=int, required=True)
    args = p.parse_args(argv)
    try:
        import torch

        torch.set_num_threads(1)  # one core per worker: OpenMP spin-waits when cores are shared
    except ImportError:  # pragma: no cover
        pass
    try:
        run_worker(args.study, worker_id=args.worker_id, trials=args.trials)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except TooManyErrors as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
