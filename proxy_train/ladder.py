"""The scaling-law ladder: proxy runs across model sizes x token budgets -> ``runs.csv``.

A ladder is planned (:mod:`proxy_train.ladder_plan`: ``LadderSpec``, points, the TrainConfig of a
run), split into worker tasks (:mod:`proxy_train.ladder_tasks`), trained by ``run_ladder`` here,
and tabulated (:mod:`proxy_train.ladder_table`: ``RunRecord`` rows of runs.csv). Sizes are
``planner.shape.ModelShape`` objects (:mod:`proxy_train.ladder_sizes`).

Conventions (also written into ``study.yaml`` under ``ladder`` and into every runs-table row):

* **N**: the trainer's exact counts from ``run.json`` (``total_params``, ``non_embedding_params``;
  untied embeddings, so embedding params = 2 x vocab x d_model). Sizes hit *non-embedding* targets
  by width alone at the hparams' ``base_depth`` (default: μP transfers the tuned values across
  width, not depth, Tensor Programs V §6.1), or with ``depth=None`` ("free") by
  :func:`planner.shape_search.search_shapes` with the trainer's head size, re-ranked by the
  trainer's own count (its d_ffn rule ``planner.shape.swiglu_ffn_dim``). Widths are multiples of
  the head size.
* **Token budgets** and **hyperparameters**: see :mod:`proxy_train.ladder_plan`.
* **Schedules**: ``wsd`` (default) trains one warmup + stable phase per size and branches a
  cooldown (``cooldown_frac`` of each budget, 1-sqrt shape) from a checkpoint at each budget
  (Hägele et al. 2024, arXiv:2405.18392: such cooldowns match separate cosine runs for about half
  the compute). ``cosine`` trains every point separately (cosine to 0.1 x peak).
* **compute_used**: see :mod:`proxy_train.ladder_table` (WSD: the shared stable phase counted once).
* **Ctrl-C** cancels the queued tasks and asks the running ones to stop at their next step boundary
  (checkpointed there; killed after ``STOP_GRACE_S`` seconds), then prints what was kept.
* **Resume**: ``runs.csv`` is rebuilt from the atomically written run.json files after every
  finished task, so a killed ladder leaves no corrupt row and a rerun skips finished points.
* **Many machines**: ``run_ladder`` trains with local processes; the same tasks can instead be
  enqueued in an Optuna storage and drained by workers anywhere (:mod:`proxy_train.ladder_queue`,
  ``scaleplan ladder --storage URL --worker``; SLURM arrays: :mod:`proxy_train.slurm`).
"""
from __future__ import annotations

import math
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from planner import __version__
from planner.errors import UserError
from planner.io import ensure_dir, read_yaml, write_yaml
from proxy_train.config import hparams_fields
from proxy_train.ladder_plan import (DEFAULT_TOKENS_PER_PARAM, MAX_EPOCHS, LadderSpec, Point, extra_points,
                                     heldout_ladder_points, load_spec, plan_points, train_config)
from proxy_train.ladder_sizes import DEFAULT_N_RANGE, parse_sizes, size_for_params, size_record, trainer_size
from proxy_train.ladder_table import RUNS_COLUMNS, RunRecord, collect_rows, write_table
from proxy_train.ladder_tasks import LadderTask, NotStarted, is_final, run_task, tasks_for, worker_init

STOP_GRACE_S = 60.0  # Ctrl-C: how long running points may take to reach a step boundary


# ------------------------------------------------------------------------------------------ study.yaml
def _schedule_detail(spec: LadderSpec, warmup_frac: float) -> str:
    if spec.schedule == "wsd":
        return (f"WSD: linear warmup ({warmup_frac} x the smallest budget's steps), constant peak LR, 1-sqrt "
                f"cooldown over the last {spec.cooldown_frac:g} of each budget to 0.1 x peak, branched from the "
                "shared stable phase (Hägele et al. 2024)")
    return (f"cosine: linear warmup ({warmup_frac} x steps), half-cosine to 0.1 x peak at the end of each run; "
            "every point is a separate run")


def spec_record(spec: LadderSpec, points: list[Point], skipped: list[dict], command: str) -> dict:
    """The ``ladder`` entry of study.yaml: everything that defines this ladder."""
    from proxy_train.train import versions

    f = hparams_fields(spec.hp) if spec.hp is not None else {}
    return {
        "command": command, "scaleplan": __version__, "versions": {k: str(v) for k, v in versions().items()},
        "data": {"path": spec.data, **spec.data_meta}, "hparams": spec.hparams,
        "hyperparameters": {k: (list(v) if isinstance(v, tuple) else v) for k, v in f.items()},
        "schedule": spec.schedule,
        "schedule_detail": _schedule_detail(spec, f.get("warmup_frac", 0.05)),
        "batch": {"sequences": spec.batch, "seq_len": spec.seq_len, "tokens_per_step": spec.tokens_per_step},
        "budgets": ({"tokens_per_param": spec.tokens_per_param, "convention": "D = m x N_non-embedding"}
                    if spec.tokens_per_param else
                    {"flops": spec.flops, "convention": "D = C / (6 N_total), rounded to whole steps"}),
        "sizes": [size_record(s) for s in spec.sizes],
        "depth": spec.depth if spec.depth else "free (search_shapes picks width and depth)",
        "points": [{"size": p.size.name, "tokens": p.tokens, "steps": p.steps, "role": p.role,
                    "tokens_per_param": p.tokens_per_param} for p in points],
        "skipped": skipped, "seed": spec.seed, "eval_batches": spec.eval_batches,
        "holdout_top": spec.holdout_top, "holdout_extra": spec.holdout_extra,
        "n_convention": "total_params / non_embedding_params are the trainer's exact counts (untied embeddings)",
        "flops_convention": "flops = 6 N_total D (Hoffmann et al. 2022); compute_used: see proxy_train/ladder_table.py",
    }


def update_study_yaml(study: Path, key: str, value: Any) -> None:
    """Set ``key`` in STUDY/study.yaml, keeping the other keys (read, merge, atomic write)."""
    path = study / "study.yaml"
    cur = read_yaml(path, "study.yaml") if path.is_file() else {}
    if not isinstance(cur, dict):
        cur = {}
    cur[key] = value
    write_yaml(path, cur)


# ------------------------------------------------------------------------------------------ run
def _train_pending(spec: LadderSpec, pending: list[LadderTask], workers: int, command: str, refresh) -> list[str]:
    """Train ``pending`` in ``workers`` spawned processes, calling ``refresh()`` as tasks finish;
    returns the tasks' errors ("key: Type: message"). Ctrl-C: see :func:`_stop_pool`."""
    import multiprocessing

    errors: list[str] = []
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=max(1, min(workers, len(pending))), mp_context=ctx,
                               initializer=worker_init)
    futs: dict = {}
    try:
        futs = {pool.submit(run_task, spec, task, command): task.key for task in pending}
        while futs:
            finished, _ = wait(list(futs), timeout=5.0, return_when=FIRST_COMPLETED)
            for f in finished:
                key = futs.pop(f)
                exc = f.exception()
                if exc is not None:
                    errors.append(f"{key}: {type(exc).__name__}: {exc}")
            refresh()
    except KeyboardInterrupt:
        _stop_pool(pool, futs)
        raise
    finally:
        pool.shutdown(wait=True)
    return errors


def _stop_pool(pool: ProcessPoolExecutor, futs: dict, grace_s: float = STOP_GRACE_S) -> None:
    """Ctrl-C: cancel the queued tasks, pass SIGINT to the workers (their running points checkpoint
    at the next step boundary and start nothing more), wait ``grace_s`` seconds, then kill."""
    import os
    import signal

    procs = list((getattr(pool, "_processes", None) or {}).values())  # CPython worker table, before shutdown
    # cancel here, not only through shutdown: wait() never wakes for a future cancelled behind its back
    running = [f for f in futs if not f.cancel()]
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.is_alive():
            try:
                os.kill(p.pid, signal.SIGINT)
            except ProcessLookupError:
                pass
    _, late = wait(running, timeout=grace_s)
    if late:
        for p in procs:
            p.kill()
    dropped = [f for f in running if f.done() and isinstance(f.exception(), NotStarted)]
    n_queued = len(futs) - len(running) + len(dropped)
    print(f"ladder interrupted: {len(running) - len(late) - len(dropped)} running task(s) stopped at a step "
          f"boundary (checkpointed), {len(late)} killed after {grace_s:.0f} s, {n_queued} queued task(s) not "
          "started", file=sys.stderr)


def _summary(spec: LadderSpec, study: Path, rows: list[RunRecord], *, n_points: int, done_before: int,
             skipped: list[dict], errors: list[str], wall_s: float) -> dict:
    return {
        "study": str(study), "runs_table": str(study / "runs.csv"), "points": n_points,
        "finished_before": done_before, "ok": sum(r.status == "ok" for r in rows),
        "diverged": sum(r.status == "diverged" for r in rows),
        "missing": n_points - len(rows), "skipped_pairs": skipped, "errors": errors,
        "compute_used": float(sum(r.compute_used or 0 for r in rows)),
        "compute_separate_runs": float(sum(r.flops for r in rows)),
        "wall_s": wall_s, "schedule": spec.schedule,
        "sizes": [s.name for s in spec.sizes],
        "non_embedding_decades": math.log10(spec.sizes[-1].non_embedding_params / spec.sizes[0].non_embedding_params),
    }


def run_ladder(spec: LadderSpec, study: str | Path, *, workers: int = 2, parquet: bool = False,
               command: str = "", progress: bool = True) -> dict:
    """Train every pending point with ``workers`` processes; rebuild runs.csv as results arrive."""
    from tqdm import tqdm

    study = ensure_dir(study, "study folder")
    points, skipped = plan_points(spec)
    update_study_yaml(study, "ladder", spec_record(spec, points, skipped, command))
    tasks = tasks_for(spec, points, study)
    n_points = sum(len(t.run_dirs) for t in tasks)
    done_before = sum(is_final(d) for t in tasks for d in t.run_dirs)
    pending = [t for t in tasks if not t.is_done()]
    t0 = time.perf_counter()
    bar = tqdm(total=n_points, initial=done_before, desc="ladder points", unit="run", file=sys.stderr,
               disable=not progress)

    def refresh() -> list[RunRecord]:
        rows = collect_rows(spec, points, study)
        write_table(rows, study, parquet)
        n_done = sum(r.status in ("ok", "diverged") for r in rows)
        bar.update(max(0, n_done - bar.n))
        return rows

    refresh()
    try:
        errors = _train_pending(spec, pending, workers, command, refresh) if pending else []
    except KeyboardInterrupt:
        rows = refresh()
        bar.close()
        print(f"kept: {sum(r.status in ('ok', 'diverged') for r in rows)} of {n_points} points finished in "
              f"{study / 'runs.csv'}; rerun the same command to resume", file=sys.stderr)
        raise
    rows = refresh()
    bar.close()
    summary = _summary(spec, study, rows, n_points=n_points, done_before=done_before, skipped=skipped,
                       errors=errors, wall_s=time.perf_counter() - t0)
    if errors:
        raise UserError(f"{len(errors)} ladder task(s) failed (first: {errors[0]}); fix the cause and rerun the "
                        "same command to resume (finished points are kept)")
    return summary


__all__ = ["Point", "LadderSpec", "LadderTask", "RunRecord", "trainer_size", "size_for_params", "parse_sizes",
           "load_spec", "plan_points", "extra_points", "heldout_ladder_points", "run_ladder", "collect_rows",
           "write_table", "RUNS_COLUMNS", "update_study_yaml", "train_config", "spec_record", "DEFAULT_N_RANGE",
           "DEFAULT_TOKENS_PER_PARAM", "MAX_EPOCHS"]
