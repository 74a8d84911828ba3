"""Run (or resume) an Optuna sweep over μP base hyperparameters on small proxy widths.

The parent process of ``scaleplan sweep`` and ``scaleplan transfer-check``: it records the study
(:mod:`proxy_train.study`), prepares the storage (:mod:`proxy_train.sweep_storage`), repairs what
a killed run left behind, and runs the trials inline or in ``--workers`` processes
(:mod:`proxy_train.workers`) with a progress bar. The search space and samplers are in
:mod:`proxy_train.sweep_space`, the objective in :mod:`proxy_train.sweep_objective`, the trials
table, hparams.yaml and figures in :mod:`proxy_train.sweep_export`.

Conventions:

* ``--trials N`` = N finished (COMPLETE or PRUNED) trials; see :mod:`proxy_train.trials`.
* Rerunning the same command resumes: finished trials are kept, killed or interrupted ones are
  retried with the same parameters; a rerun with other options is refused.
* The summary (``--json``) holds the target, the trial counts of :class:`proxy_train.trials.TrialCounts`,
  the best trial, the study folder, the masked storage, the workers, what was resumed and the
  wall time (seconds).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from planner.errors import UserError
from planner.io import ensure_dir
from planner.provenance import mask_url
from proxy_train.interrupts import PARENT_ENV
from proxy_train.study import (Runtime, StudyLock, StudyMeta, StudySpec, is_study, read_study_meta,
                               write_or_check_meta)
from proxy_train.sweep_storage import (STORAGE_ENV, is_journal, is_rdb, load_study, open_storage, resolve_storage,
                                       storage_label)
from proxy_train.trials import BestTrial, best_value, counts, is_counted
from proxy_train.workers import TooManyErrors, repair_and_requeue, run_worker


def run_sweep(spec: StudySpec, study_dir: str | Path, *, trials: int, workers: int = 1, storage: str | None = None,
              command: str = "", heartbeat_interval: int = 60, grace_period: int | None = None,
              progress: bool = True, cells: list[dict] | None = None, mode: str = "run",
              study_attrs: dict | None = None) -> dict:
    """Run (or resume) a study until it holds ``trials`` finished trials; return a summary.

    ``workers`` > 1 starts that many ``python -m proxy_train.workers`` processes (one torch
    thread each) after the study was created here once.

    ``cells`` (a grid, e.g. transfer-check's width x param x log2 LR) makes coverage exact: every
    cell without a finished trial is enqueued once, and the target becomes finished + pending, so
    parallel workers can neither skip a cell nor run one twice (Optuna's GridSampler alone can,
    when workers race or trials are retried).

    ``mode``: ``run`` (create or resume, enqueue the cells, train), ``enqueue`` (create and enqueue,
    train nothing: the SLURM array's workers train) or ``join`` (an RDB study that another command
    created and enqueued: train until the target, enqueue nothing, repair nothing, so workers
    started at the same moment on many machines never enqueue a cell twice). ``study_attrs`` are set
    as the Optuna study's user attrs when it is created or resumed (not in ``join``).
    """
    if trials <= 0 or workers <= 0:
        raise UserError("--trials and --workers must be positive")
    if mode not in ("run", "enqueue", "join"):
        raise ValueError(f"mode {mode!r}")
    study_dir = Path(study_dir)
    url = resolve_storage(study_dir, storage)
    rdb = is_rdb(url)
    runtime = Runtime(heartbeat_interval=heartbeat_interval if rdb else None,
                      grace_period=(grace_period or 2 * heartbeat_interval) if rdb else None)
    if rdb or not is_journal(url):
        open_storage(url)  # fail fast, before anything is written
    if study_dir.exists() and not study_dir.is_dir():
        raise UserError(f"--study {study_dir} is a file; pass a folder")
    if is_study(study_dir):
        read_study_meta(study_dir)  # raises a clear error on a corrupt study file
    ensure_dir(study_dir, "study folder")
    with (nullcontext() if rdb else StudyLock(study_dir)) as lock:
        meta = write_or_check_meta(study_dir, spec, storage=storage_label(url), command=command, trials=trials,
                                   runtime=runtime)
        study = load_study(study_dir, url, meta, create=mode != "join")
        repaired: dict = {}
        if mode != "join":
            for k, v in (study_attrs or {}).items():
                study.set_user_attr(k, v)
            repaired = repair_and_requeue(study, trials, fail_running=not rdb, count_failed=spec.count_failed)
            if cells is not None:
                trials = enqueue_missing_cells(study, cells, count_failed=spec.count_failed)
        t0 = time.time()
        if mode == "enqueue":
            pass
        elif workers == 1:
            _run_inline(study_dir, url, trials, meta, progress)
        else:
            _run_processes(study_dir, url, trials, workers, meta, progress, lock)
        study = load_study(study_dir, url, meta)
    summary = summarize(study, spec, trials)
    summary.update(study=str(study_dir), storage=mask_url(url), workers=workers,
                   resumed=repaired, wall_s=round(time.time() - t0, 2))
    return summary


def enqueue_missing_cells(study, cells: list[dict], *, count_failed: bool = False) -> int:
    """Enqueue each grid cell that has neither a finished, a waiting nor a running trial; return the
    target number of finished trials (finished so far + waiting + running). A RUNNING cell counts as
    covered: under an RDB storage it belongs to a worker on another machine, and if that worker
    died its heartbeat goes stale and Optuna's retry callback re-enqueues it (under the journal
    file :func:`run_sweep` has already failed and re-enqueued every RUNNING trial)."""
    from optuna.trial import TrialState

    names = sorted(cells[0])

    def key(params: dict):
        return tuple(params.get(n) for n in names) if all(n in params for n in names) else None

    done, waiting = set(), set()
    for t in study.get_trials(deepcopy=False):
        if t.state in (TrialState.WAITING, TrialState.RUNNING):
            waiting.add(key(t.system_attrs.get("fixed_params") or t.params))
        elif is_counted(t, count_failed):
            done.add(key(t.params))
    for cell in cells:
        k = key(cell)
        if k not in done and k not in waiting:
            study.enqueue_trial(dict(cell), skip_if_exists=False)
            waiting.add(k)
    waiting.discard(None)
    return counts(study, count_failed).finished + len(waiting)


def _bar(total: int, initial: int, enabled: bool, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, initial=min(initial, total), desc=desc, unit="trial", file=sys.stderr,
                disable=not enabled, dynamic_ncols=True)


def _show(bar, study, trials: int, count_failed: bool, shown: tuple[str, ...]) -> None:
    """Progress bar: finished trials, the best value so far and the counts named in ``shown``."""
    c = counts(study, count_failed)
    bar.n = min(c.finished, trials)
    best = best_value(study)
    bar.set_postfix(best=f"{best:.4f}" if best is not None else "-", **{k: getattr(c, k) for k in shown})
    bar.refresh()


def _run_inline(study_dir: Path, url: str, trials: int, meta: StudyMeta, progress: bool) -> None:
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    study = load_study(study_dir, url, meta)
    count_failed = meta.spec.count_failed
    bar = _bar(trials, counts(study, count_failed).finished, progress, study_dir.name)
    try:
        run_worker(study_dir, worker_id=0, trials=trials, storage_url=url,
                   progress=lambda st, frozen: _show(bar, st, trials, count_failed, ("pruned", "failed")))
    except TooManyErrors as e:
        raise UserError(str(e)) from None
    finally:
        bar.close()


def _start_workers(study_dir: Path, url: str, trials: int, n: int) -> list[tuple[subprocess.Popen, Any]]:
    """Start ``n`` worker processes (logs in ``study_dir/logs``); the URL goes by environment."""
    logs = study_dir / "logs"
    logs.mkdir(exist_ok=True)
    env = {**os.environ, STORAGE_ENV: url, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           PARENT_ENV: str(os.getpid())}
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    procs = []
    for i in range(n):
        log = open(logs / f"worker_{i}.log", "a")
        procs.append((subprocess.Popen(
            [sys.executable, "-m", "proxy_train.workers", "--study", str(study_dir), "--worker-id", str(i),
             "--trials", str(trials)], stdout=log, stderr=subprocess.STDOUT, env=env), log))
    return procs


def _stop_workers(procs) -> None:
    """Ctrl-C: pass SIGINT on (the workers mark their trials interrupted), then wait or kill."""
    for p, _ in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    for p, _ in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()


def _run_processes(study_dir: Path, url: str, trials: int, n_workers: int, meta: StudyMeta,
                   progress: bool, lock: StudyLock | None = None) -> None:
    procs = _start_workers(study_dir, url, trials, n_workers)
    if lock is not None:  # journal storage: the lock names every worker, not only this process
        lock.add_workers([p.pid for p, _ in procs])
    study = load_study(study_dir, url, meta)
    count_failed = meta.spec.count_failed
    bar = _bar(trials, 0, progress, f"{study_dir.name} ({n_workers} workers)")
    try:
        while any(p.poll() is None for p, _ in procs):
            _show(bar, study, trials, count_failed, ("running", "failed"))
            time.sleep(1.0)
    except KeyboardInterrupt:
        _stop_workers(procs)
        c = counts(study, count_failed)
        print(f"sweep interrupted: {c.finished} finished trial(s) kept; the interrupted ones are retried "
              "with the same parameters on rerun", file=sys.stderr)
        raise
    finally:
        bar.close()
        for _, log in procs:
            log.close()
    _check_exits(study_dir, [p.returncode for p, _ in procs], counts(study, count_failed).finished >= trials)


def _check_exits(study_dir: Path, returncodes: list[int], target_reached: bool) -> None:
    """Warn about workers that died when the others reached the target; else raise the first error."""
    bad = [(i, rc) for i, rc in enumerate(returncodes) if rc != 0]
    if bad and target_reached:
        # A worker died (e.g. killed) but the others retried its trial and reached the target.
        for i, rc in bad:
            print(f"warning: worker {i} exited with status {rc}; its trial was retried by the others",
                  file=sys.stderr)
        return
    if bad:
        i, rc = bad[0]
        log = study_dir / "logs" / f"worker_{i}.log"
        lines = log.read_text(errors="replace").strip().splitlines()
        last = next((ln for ln in reversed(lines) if ln.startswith("error:")), lines[-1] if lines else "")
        raise UserError(f"worker {i} exited with status {rc}: {last.removeprefix('error: ')} (log: {log})")


def summarize(study, spec: StudySpec, trials: int) -> dict:
    """Target, trial counts and the best trial (number, val_loss, params, width, param)."""
    out: dict[str, Any] = {"target_trials": trials, **counts(study, spec.count_failed).to_dict()}
    best = BestTrial.of(study)
    if best is not None:
        out["best"] = best.to_dict()
    return out


def human_summary(s: dict) -> str:
    lines = [f"study {s['study']}: {s['finished']}/{s['target_trials']} finished trials "
             f"({s['complete']} complete, {s['pruned']} pruned, {s['failed']} failed) in {s['wall_s']} s"]
    r = s.get("resumed") or {}
    if r.get("failed_running") or r.get("requeued"):
        lines.append(f"resumed: failed stale trials {r.get('failed_running')}, re-enqueued {r.get('requeued')}")
    if "best" in s:
        b = s["best"]
        ps = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in b["params"].items())
        lines.append(f"best: trial {b['trial']} val_loss={b['val_loss']:.4f} ({ps})")
    return "\n".join(lines)
