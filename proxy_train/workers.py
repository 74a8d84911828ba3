"""Sweep worker processes: exactly N finished trials, nothing lost, nothing run twice.

Conventions (``--trials N`` and the trial states: :mod:`proxy_train.trials`; storages:
:mod:`proxy_train.sweep_storage`):

* Killed or interrupted trials are retried with the same parameters. Under an RDB storage a
  surviving worker fails a trial whose heartbeat stopped and Optuna's
  ``RetryHeartbeatStaleTrialCallback(max_retry=3)`` re-enqueues it. The journal file storage has no
  heartbeat, so the next ``scaleplan sweep`` on the same folder fails the trials a killed process
  left RUNNING and re-enqueues them with the same callback, i.e. with the same ``retry_history``
  lineage (:func:`repair_and_requeue`).
* No overshoot with several workers: after each trial a worker stops once ``N`` trials are
  finished, and *waits* while the running trials of other workers already fill the remaining slots
  (one of them may die and need a retry). At a trial's start a worker re-checks the count; of two
  workers that raced for the last slot the one with the higher trial number gives its trial up
  (FAIL, ``fail_reason = "surplus: ..."``), so finished trials never exceed ``N``.

The worker entry point is ``python -m proxy_train.workers --study DIR --worker-id I --trials N``
(started by ``scaleplan sweep --workers W``). It reads the study's ``study.yaml``; the storage
URL comes from the environment variable ``SCALEPLAN_SWEEP_STORAGE`` so that a password never
appears in a process list. A worker dies with the ``scaleplan sweep`` process that started it (its
pid in ``SCALEPLAN_PARENT_PID``; :func:`proxy_train.interrupts.die_with_parent`), and Ctrl-C stops
its trial at a step boundary (trial ``interrupted``, retried on rerun).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Callable

from planner.errors import UserError
from proxy_train.interrupts import PARENT_ENV, die_with_parent
from proxy_train.study import read_study_meta
from proxy_train.sweep_objective import make_objective
from proxy_train.sweep_storage import load_study, resolve_storage
from proxy_train.trials import KILLED, RETRIABLE, SURPLUS, Surplus, counts, fail_reason, is_counted

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
    free = target - c.finished - c.running - c.waiting
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

class TooManyErrors(RuntimeError):
    """So many trials failed with real errors that the cause must be fixed first."""


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
            if c.errors >= self.max_errors:
                study.stop()
                raise TooManyErrors(f"{c.errors} trials failed with errors (last: "
                                    f"{fail_reason(frozen) or 'see trials table'}); fix the cause "
                                    "and rerun the same command to resume")
            if c.finished >= self.target:
                study.stop()
                return
            if c.finished + c.running < self.target:
                return  # a slot is free: ask the next (or a waiting, retried) trial
            time.sleep(self.poll_s)  # other workers' running trials fill the target: watch them


def run_worker(study_dir: str | Path, *, worker_id: int, trials: int, storage_url: str | None = None,
               progress: Callable | None = None):
    """Run one worker on an existing study until it holds ``trials`` finished trials; returns the
    study's :class:`proxy_train.trials.TrialCounts`."""
    import optuna

    study_dir = Path(study_dir)
    meta = read_study_meta(study_dir)
    url = resolve_storage(study_dir, storage_url, meta=meta)
    study = load_study(study_dir, url, meta, worker_id=worker_id)
    guard = TargetGuard(trials, count_failed=meta.spec.count_failed, on_trial=progress)
    if counts(study, guard.count_failed).finished >= trials:
        return counts(study, guard.count_failed)
    objective = make_objective(study_dir, meta.spec, guard, worker_id=worker_id)
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
    die_with_parent(int(os.environ.get(PARENT_ENV) or 0) or None)  # no orphan keeps training
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
