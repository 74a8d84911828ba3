"""The transfer check's grid as a shared work queue: workers on many machines drain one grid.

Conventions (the grid and its analysis: :mod:`proxy_train.transfer`; the sweep machinery it runs
on: :mod:`proxy_train.sweep`, :mod:`proxy_train.workers`):

* **Queue**: the Optuna study named after the ``--out`` folder (``study.yaml``'s ``study_name``)
  in the storage. The command that enqueues (``scaleplan transfer-check --data ... --storage URL``,
  with or without ``--enqueue``) enqueues every width x param x log2_lr cell once
  (:func:`proxy_train.sweep.enqueue_missing_cells`) and records the study spec
  (``StudySpec.to_dict``) and the cell list as the study's user attrs ``transfer_spec`` and
  ``transfer_cells``. A worker (``--out DIR --storage URL --worker``, on any machine, the same
  ``--out`` folder name) reads both from the storage, writes its own ``study.yaml`` from them and
  trains until every cell is finished; it never enqueues, so workers started at the same moment
  cannot enqueue a cell twice.
* **Why cells are enqueued, not left to Optuna's GridSampler** (optuna 5.1.0,
  ``optuna/samplers/_grid.py``): ``GridSampler.before_trial`` gives trial number ``i < n_grid``
  the grid point ``i`` and any later trial a random point that is neither finished nor RUNNING
  (``_get_unvisited_grid_ids``); once every point has started it hands out unfinished points
  again, and once all are finished it re-evaluates a random finished one (with a warning). A trial
  retried by ``RetryHeartbeatStaleTrialCallback`` or enqueued carries ``fixed_params`` and is left
  alone, without a ``grid_id``, so the sampler's bookkeeping does not see it. Concurrent workers
  therefore can run a point twice through the sampler alone; with every cell enqueued they only
  pop waiting trials, and the target (finished = number of cells) stops them. One gap remains: a
  worker that asks while a stale cell sits between its FAIL and its retry gets a fresh sampled
  trial (a duplicate, which the analysis drops: :func:`proxy_train.transfer.grid_points`); its slot
  can leave the retried cell waiting when the target is met, so :func:`join` raises the target and
  runs again while any cell waits.
* **Dead workers**: only an RDB storage (``postgresql://``...) records heartbeats (optuna
  ``BaseHeartbeat``: RDBStorage only), so ``--worker`` requires one. A surviving worker's
  ``optuna.storages.fail_stale_trials`` (:class:`proxy_train.workers.TargetGuard`) fails a cell
  silent for the grace period and ``RetryHeartbeatStaleTrialCallback(max_retry=3)`` re-enqueues it
  with the same parameters; on one machine use ``--workers N`` with the journal file instead.
* **Results**: transfer.json, transfer.html and runs.csv are rebuilt from the storage
  (:func:`proxy_train.transfer.finish`), by whichever worker sees the grid finished.
"""
from __future__ import annotations

import socket
from pathlib import Path

from planner.errors import UserError
from planner.provenance import mask_url

SPEC_ATTR = "transfer_spec"
CELLS_ATTR = "transfer_cells"
SWEEP_UPS = 3  # extra passes for cells left waiting after the target was met (see join)


def queue_attrs(spec, cells: list[dict]) -> dict:
    """The study user attrs a worker needs (JSON only)."""
    return {SPEC_ATTR: spec.to_dict(), CELLS_ATTR: [dict(c) for c in cells]}


def require_rdb(url: str, what: str) -> None:
    from proxy_train.sweep_storage import is_rdb

    if not is_rdb(url):
        raise UserError(f"{what} needs an RDB storage (--storage postgresql://user@host/db): a journal file "
                        "has no heartbeat and is run by one command; on one machine use --workers N instead")


def read_queue(out: str | Path, url: str):
    """(StudySpec, cells) of the transfer-check queue named after ``out`` in ``url``; UserError when
    there is none or it holds no transfer check."""
    import optuna

    from proxy_train.study import StudySpec
    from proxy_train.sweep_storage import open_storage

    name = Path(out).resolve().name
    storage = open_storage(url)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        attrs = optuna.load_study(study_name=name, storage=storage).user_attrs
    except KeyError:
        raise UserError(f"no transfer check {name} in {mask_url(url)}; enqueue it first with `scaleplan "
                        f"transfer-check --out {name} --data D --storage URL --enqueue` (the same --out folder "
                        "name on every machine)") from None
    if SPEC_ATTR not in attrs or CELLS_ATTR not in attrs:
        raise UserError(f"study {name} in {mask_url(url)} is not a transfer-check queue (no {SPEC_ATTR}); "
                        "use the --out folder name of the check")
    spec = StudySpec.from_dict(attrs[SPEC_ATTR], where=f"{mask_url(url)} {name}")
    if spec.kind != "transfer":
        raise UserError(f"study {name} in {mask_url(url)} holds a {spec.kind}, not a transfer check")
    return spec, list(attrs[CELLS_ATTR])


def join(out: str | Path, url: str, *, workers: int = 1, heartbeat_interval: int = 60,
         grace_period: int | None = None, command: str = "", progress: bool = True) -> dict:
    """Work on an enqueued transfer check until every cell is finished; returns the sweep summary."""
    from proxy_train.sweep import run_sweep

    require_rdb(url, "transfer-check --worker")
    spec, cells = read_queue(out, url)
    if not Path(spec.data).is_dir():
        raise UserError(f"data folder {spec.data} not found on {socket.gethostname()}; the workers need it at "
                        "the same path (a shared filesystem)")
    target = len(cells)
    for _ in range(1 + SWEEP_UPS):
        summary = run_sweep(spec, out, trials=target, workers=workers, storage=url, command=command,
                            heartbeat_interval=heartbeat_interval, grace_period=grace_period, progress=progress,
                            mode="join")
        if not summary["waiting"]:
            break
        # A cell still waits although the target was met: a trial Optuna's sampler made while a stale
        # cell was between its FAIL and its retry filled the slot. Raise the target and run it too.
        target = summary["finished"] + summary["waiting"] + summary["running"]
    return summary
