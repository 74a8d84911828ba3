"""The units of work of a ladder: ``LadderTask`` (what one worker process trains) and ``run_task``.

Conventions:
* Layout: ``STUDY/runs/<size>/branch_<tokens>/run.json`` (WSD branches of one stable phase, one task
  per size), ``STUDY/runs/<size>/cosine_<tokens>/run.json`` (one task per point) and
  ``STUDY/runs/extra_<size>/<schedule>_<tokens>/`` (the held-out larger proxy, a single run).
* A run folder is done when its run.json has a final status (ok | diverged); tasks whose folders
  are all done are not submitted (resume).
* Tasks run largest first by ``cost``, an estimate of 6 N x tokens (a WSD task: its longest budget
  plus every cooldown), so that the workers stay balanced; it orders work, it is not the compute
  reported (``proxy_train.schedules.wsd_branch_charges``).
* Evaluation: ``evals_per_run`` evaluations over the smallest budget of the task.
* Workers (``worker_init``) die with the ladder process and stop at a step boundary on SIGINT.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from planner.errors import UserError
from planner.io import read_json
from planner.shape import ModelShape
from proxy_train.interrupts import StopRequested
from proxy_train.ladder_plan import LadderSpec, Point, train_config


class NotStarted(StopRequested):
    """A queued task that a worker dropped because the ladder was interrupted (Ctrl-C)."""


@dataclass
class LadderTask:
    """One worker's job: WSD branches of one size (``branches``) or a single run."""
    key: str                  # label in progress and error messages
    size: ModelShape
    budgets: list[int]        # tokens, ascending
    schedule: str             # wsd | cosine
    branches: bool            # True: one stable phase with a cooldown branch per budget
    out_dir: Path             # the branches' parent folder, or the single run's folder
    run_dirs: list[Path]      # one run folder per budget
    cost: float               # scheduling estimate (see the module docstring)

    def is_done(self) -> bool:
        return all(is_final(d) for d in self.run_dirs)


def is_final(run_dir: Path) -> bool:
    try:
        return read_json(run_dir / "run.json").get("status") in ("ok", "diverged")
    except UserError:
        return False


def run_dir(spec: LadderSpec, study: Path, p: Point) -> Path:
    """Where point ``p``'s run.json lives (see the module docstring)."""
    runs = study / "runs"
    if p.role != "ladder":
        return runs / f"extra_{p.size.name}" / f"{spec.schedule}_{p.tokens}"
    return runs / p.size.name / (f"branch_{p.tokens}" if spec.schedule == "wsd" else f"cosine_{p.tokens}")


def tasks_for(spec: LadderSpec, points: list[Point], study: Path) -> list[LadderTask]:
    """The tasks that train ``points``, largest cost first."""
    tasks = []
    by_size: dict[str, list[Point]] = {}
    for p in points:
        if p.role == "ladder":
            by_size.setdefault(p.size.name, []).append(p)
    for name, pts in by_size.items():
        size = pts[0].size
        if spec.schedule == "wsd":
            budgets = sorted(p.tokens for p in pts)
            dirs = [run_dir(spec, study, p) for p in sorted(pts, key=lambda p: p.tokens)]
            cost = size.total_params * (max(budgets) + spec.cooldown_frac * sum(budgets))
            tasks.append(LadderTask(name, size, budgets, "wsd", True, study / "runs" / name, dirs, cost))
        else:
            for p in pts:
                d = run_dir(spec, study, p)
                tasks.append(LadderTask(f"{name}/{p.tokens}", size, [p.tokens], "cosine", False, d, [d],
                                        size.total_params * p.tokens))
    for p in points:
        if p.role == "holdout_extra":
            d = run_dir(spec, study, p)
            tasks.append(LadderTask(f"extra {p.size.name}", p.size, [p.tokens], spec.schedule, False, d, [d],
                                    p.size.total_params * p.tokens))
    tasks.sort(key=lambda t: -t.cost)
    return tasks


def run_task(spec: LadderSpec, task: LadderTask, command: str, *, device: str | None = None,
             compile: bool = False, threads: int | None = None) -> int:
    """Train ``task`` (in a worker process); returns the number of run.json files it finished.
    A worker that was asked to stop (SIGINT) starts nothing more. ``device`` (auto | cpu | cuda) and
    ``compile`` are runtime fields of the TrainConfig: they do not enter the config hash, so a point
    checkpointed on one device resumes on another (:mod:`proxy_train.device`); so is ``threads``
    (torch threads, 1 by default: one core per worker)."""
    from proxy_train.interrupts import stop_requested
    from proxy_train.train import train, train_wsd_branches

    if stop_requested():
        raise NotStarted(f"{task.key}: not started (the ladder was interrupted)")

    small_steps = min(task.budgets) // spec.tokens_per_step
    cfg = train_config(spec, task.size, tokens=max(task.budgets), schedule=task.schedule,
                       eval_every=max(1, small_steps // max(1, spec.evals_per_run)), command=command)
    if device is not None or compile or threads:
        cfg = cfg.replace(device=device or cfg.device, compile=bool(compile), threads=threads or cfg.threads).validate()
    if task.branches:
        return len(train_wsd_branches(cfg, task.budgets, task.out_dir, cooldown_frac=spec.cooldown_frac))
    train(cfg, task.out_dir)
    return 1


def worker_init() -> None:
    """Ladder worker set-up: one torch thread, SIGINT = stop at the next step boundary, and death
    with the parent process (:mod:`proxy_train.interrupts`)."""
    import torch

    from proxy_train.interrupts import die_with_parent, install_worker_sigint

    die_with_parent()
    install_worker_sigint()
    torch.set_num_threads(1)  # one core per worker: OpenMP threads spin-wait on a shared machine
