"""The ladder as a shared work queue in an Optuna storage: any number of workers, on any machines.

Conventions:
* **Queue**: one Optuna study ``<study folder name>-ladder`` in the storage (the journal file
  ``STUDY/optuna.journal`` by default; any RDB URL such as ``postgresql://`` for many machines).
  Each task of :func:`proxy_train.ladder_tasks.tasks_for` (a size's WSD stable phase with all its
  cooldown branches, so a branch never starts before its trunk checkpoint exists; or one cosine /
  held-out point) is one trial, enqueued once by ``study.enqueue_trial({"task": key})`` (Optuna keeps
  the key as the trial's ``fixed_params`` system attr) with the user attr ``ladder_task``. The
  study's user attr ``ladder_spec`` holds the whole ladder (:func:`spec_to_dict`), so a worker needs
  only the storage URL, the runs root and the data folder.
* **Claiming**: a worker moves a WAITING trial to RUNNING with ``storage.set_trial_state_values``,
  the step ``Study.ask`` uses to pop enqueued trials (optuna/study/study.py ``_pop_waiting_trial_id``).
  It is atomic: RDBStorage locks the row (``SELECT ... FOR UPDATE``) and refuses a trial no longer
  WAITING; JournalStorage replays the log and only the first writer owns the trial
  (optuna/storages/journal/_storage.py ``set_trial_state_values``). ``ask`` itself is not used
  because with an empty queue it creates a new, empty trial.
* **Dead workers**: under an RDB storage each worker records a heartbeat (``storage.record_heartbeat``
  every ``heartbeat_interval`` s); a surviving worker calls ``optuna.storages.fail_stale_trials``,
  which fails a trial silent for ``grace_period`` s and re-enqueues it through
  ``RetryHeartbeatStaleTrialCallback(max_retry=3)`` (same task key, ``retry_history`` lineage). The
  journal storage has no heartbeat (only RDBStorage implements ``BaseHeartbeat``) and is meant for
  one machine: a worker fails a RUNNING trial whose owner (user attr ``worker`` = host:pid) is a dead
  process on its own host, and re-enqueues it with the same callback.
* **Resume, never twice**: the new owner trains the task in the same run folders, resuming from
  their checkpoints (``ckpt.pt``, ``stable/ckpt.pt``); a run folder whose run.json is final is
  returned as is (:func:`proxy_train.train.train`), so no point is trained to completion twice.
* **Records** (read back by :mod:`proxy_train.ladder_queue_results`): a finished trial's user attr ``runs`` maps each run folder (relative to the runs
  root) to its run.json without the curve, plus ``throughput`` (tokens/s, MFU:
  :mod:`proxy_train.device`); its value is the final validation loss of the task's largest budget
  (``inf`` when diverged). runs.csv is rebuilt from these records, not from any one disk.
* **Runs root** (``--runs-root``, default the study folder): the folder that receives ``runs/``;
  it may be a shared filesystem, and it is the only path all workers must see.
"""
from __future__ import annotations

import copy
import math
import os
import socket
import sys
import threading
import time
import warnings
from datetime import datetime, timezone
from dataclasses import asdict, dataclass, field
from pathlib import Path

from planner.errors import UserError
from planner.hparams import HParams
from planner.io import read_json, write_json
from planner.provenance import mask_url
from planner.shape import ModelShape
from proxy_train.host import pid_alive
from proxy_train.ladder_plan import LadderSpec, plan_points
from proxy_train.ladder_tasks import LadderTask, is_final, run_task, tasks_for

TASK_ATTR = "ladder_task"
SPEC_ATTR = "ladder_spec"
ROOT_ATTR = "runs_root"
WORKER_ATTR = "worker"        # host:pid of the trial's owner
RUNS_ATTR = "runs"
FAIL_ATTR = "fail_reason"
DEFAULT_HEARTBEAT_S = 60      # Optuna's documented example values: interval 60 s, grace 120 s
MAX_RETRY = 3
OWNERLESS_S = 120       # a claimed trial must name its worker within this time (it does so at once)


# ------------------------------------------------------------------------------------------ the spec
def spec_to_dict(spec: LadderSpec) -> dict:
    """The ladder as plain JSON (the queue study's user attr ``ladder_spec``)."""
    d = asdict(spec)
    d["sizes"] = [s.to_dict() for s in spec.sizes]
    d["hp"] = spec.hp.to_dict() if spec.hp is not None else None
    return d


def spec_from_dict(d: dict) -> LadderSpec:
    """The LadderSpec of a queue; UserError when the record is not one this version can read."""
    try:
        d = dict(d)
        d["sizes"] = [ModelShape.from_dict(s, where="ladder_spec.sizes") for s in d["sizes"]]
        d["hp"] = HParams.from_dict(d["hp"], where="ladder_spec.hp") if d.get("hp") else None
        return LadderSpec(**d)
    except (TypeError, KeyError, ValueError) as e:
        raise UserError(f"the ladder queue's spec cannot be read by this scaleplan ({type(e).__name__}: {e}); "
                        "run the workers with the scaleplan version that enqueued it") from None


def queue_name(study_dir: str | Path) -> str:
    return f"{Path(study_dir).resolve().name}-ladder"


# ------------------------------------------------------------------------------------------ storage
def open_queue(study_dir: str | Path, url: str, *, create: bool = False,
               heartbeat_interval: int | None = DEFAULT_HEARTBEAT_S, grace_period: int | None = None):
    """The queue study of ``study_dir`` in storage ``url`` (created with ``create``)."""
    import optuna

    from proxy_train.sweep_storage import is_rdb, open_storage

    name = queue_name(study_dir)
    if not create and url.startswith("journal:") and not Path(url.split("://", 1)[1]).exists():
        raise UserError(f"no ladder queue in {mask_url(url)} (the journal file is missing); create it with "
                        "`scaleplan ladder --study DIR --data D --hparams H --storage URL --enqueue`")
    storage = open_storage(url, heartbeat_interval=heartbeat_interval if is_rdb(url) else None,
                           grace_period=grace_period)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if create:
        try:
            return optuna.create_study(study_name=name, storage=storage, direction="minimize", load_if_exists=True)
        except Exception as e:
            raise UserError(f"cannot create the ladder queue {name} in {mask_url(url)}: "
                            f"{str(e).splitlines()[0]}; check the storage") from None
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise UserError(f"no ladder queue {name} in {mask_url(url)}; create it with `scaleplan ladder --study "
                        f"{study_dir} --data D --hparams H --storage URL --enqueue` first") from None


def check_runs_root(root: str | Path) -> Path:
    """``root`` created if needed and checked writable (it holds every checkpoint); UserError if not."""
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".write-test-{socket.gethostname()}-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise UserError(f"runs root {root} is not writable from {socket.gethostname()} ({e.strerror or e}); "
                        "give --runs-root a folder every worker can write (e.g. a shared filesystem)") from None
    return root.resolve()


# ------------------------------------------------------------------------------------------ enqueue
def _active_keys(study) -> set[str]:
    from optuna.trial import TrialState

    keep = (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE)
    return {t.user_attrs.get(TASK_ATTR) for t in study.get_trials(deepcopy=False, states=keep)}


def enqueue_ladder(spec: LadderSpec, study_dir: str | Path, url: str, *, runs_root: str | Path | None = None,
                   heartbeat_interval: int | None = DEFAULT_HEARTBEAT_S, grace_period: int | None = None) -> dict:
    """Create the queue (once, before any worker starts) and enqueue every task not yet waiting,
    running or complete (a rerun re-enqueues tasks whose trials all failed). Returns
    ``{"queue", "enqueued", "tasks"}``. A queue that holds another ladder is a UserError."""
    study = open_queue(study_dir, url, create=True, heartbeat_interval=heartbeat_interval,
                       grace_period=grace_period)
    record = spec_to_dict(spec)
    old = study.user_attrs.get(SPEC_ATTR)
    if old is not None and old != record:
        raise UserError(f"the ladder queue {study.study_name} in {mask_url(url)} holds another ladder (other "
                        "options); use a new --study folder or the same options as before")
    if old is None:
        study.set_user_attr(SPEC_ATTR, record)
    root = str(Path(runs_root or study_dir).resolve())
    study.set_user_attr(ROOT_ATTR, study.user_attrs.get(ROOT_ATTR, root))
    points, _ = plan_points(spec)
    tasks = tasks_for(spec, points, Path(root))
    active = _active_keys(study)
    added = []
    for t in tasks:  # not skip_if_exists: it would also skip a task whose every trial failed
        if t.key not in active:
            study.enqueue_trial({"task": t.key}, user_attrs={TASK_ATTR: t.key}, skip_if_exists=False)
            added.append(t.key)
    return {"queue": study.study_name, "enqueued": added, "tasks": [t.key for t in tasks]}


# ------------------------------------------------------------------------------------------ workers
def claim(study):
    """A WAITING trial moved to RUNNING by this process (atomic, see the module docstring), or None."""
    from optuna import Trial
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    storage = study._storage
    for t in storage.get_all_trials(study._study_id, deepcopy=False, states=(TrialState.WAITING,)):
        try:
            if storage.set_trial_state_values(t._trial_id, state=TrialState.RUNNING):
                return Trial(study, t._trial_id)
        except UpdateFinishedTrialError:
            continue
    return None


def worker_label() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def heartbeat_on(storage) -> bool:
    """Whether ``storage`` records heartbeats (an RDB storage opened with ``heartbeat_interval``)."""
    get = getattr(storage, "get_heartbeat_interval", None)
    return get is not None and get() is not None


def _retry(study, frozen) -> None:
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "experimental"
        optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)(study, frozen)


def _fail_and_retry(study, trial_id: int, reason: str) -> None:
    """FAIL a RUNNING trial (``fail_reason``) and re-enqueue its task with Optuna's retry callback."""
    from optuna.trial import TrialState

    storage = study._storage
    try:
        storage.set_trial_user_attr(trial_id, FAIL_ATTR, reason)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
    except Exception:  # finished meanwhile
        return
    frozen = copy.deepcopy(storage.get_trial(trial_id))
    frozen.user_attrs = {k: v for k, v in frozen.user_attrs.items() if k in (TASK_ATTR,)}
    _retry(study, frozen)


def reap(study) -> list[int]:
    """Fail (and re-enqueue) the trials of dead workers; returns their numbers (RDB: stale heartbeat;
    journal: a dead pid on this host; both: a trial claimed but never labelled with its owner for
    ``OWNERLESS_S`` s, i.e. a worker killed between claiming and its first heartbeat)."""
    import optuna
    from optuna.trial import TrialState

    storage = study._storage
    dead = []
    if heartbeat_on(storage):
        before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
        optuna.storages.fail_stale_trials(study)
        dead = sorted({t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))} - before)
    host, now = socket.gethostname(), datetime.now(timezone.utc)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = str(t.user_attrs.get(WORKER_ATTR, ""))
        h, _, pid = owner.rpartition(":")
        started = t.datetime_start.astimezone(timezone.utc) if t.datetime_start else now  # naive = local time
        if not owner and (now - started).total_seconds() > OWNERLESS_S:
            _fail_and_retry(study, t._trial_id, "killed: claimed but never started by its worker")
            dead.append(t.number)
        elif (not heartbeat_on(storage) and h == host and pid.isdigit() and int(pid) != os.getpid()
              and not pid_alive(int(pid))):
            _fail_and_retry(study, t._trial_id, f"killed: worker {owner} died")
            dead.append(t.number)
    return dead


class _Heartbeat:
    """Records the trial's heartbeat now and every ``interval`` s (RDB storages; else a no-op)."""

    def __init__(self, storage, trial_id: int):
        self.storage, self.trial_id = storage, trial_id
        self.stop = threading.Event()
        self.enabled = heartbeat_on(storage)
        self.thread = None

    def _beat(self) -> None:
        interval = self.storage.get_heartbeat_interval() or DEFAULT_HEARTBEAT_S
        while not self.stop.wait(interval):
            try:
                self.storage.record_heartbeat(self.trial_id)
            except Exception:  # a connection blip; the next beat retries
                pass

    def __enter__(self):
        if self.enabled:
            self.storage.record_heartbeat(self.trial_id)
            self.thread = threading.Thread(target=self._beat, daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=5)


def _slim(run: dict) -> dict:
    return {k: v for k, v in run.items() if k != "curve"}


def task_records(task: LadderTask, root: Path, device_name: str | None = None) -> dict[str, dict]:
    """The run.json records of a trained task (no curve), with tokens/s and MFU added to each run.json."""
    from proxy_train.device import throughput

    out = {}
    for d in task.run_dirs:
        run = read_json(d / "run.json")
        if "throughput" not in run:
            run["throughput"] = throughput(run, device_name)
            write_json(d / "run.json", run)
        out[str(d.relative_to(root))] = _slim(run)
    return out


def _task_value(records: dict[str, dict]) -> float:
    last = max(records.values(), key=lambda r: r.get("tokens") or 0)
    v = last.get("final_val_loss")
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else math.inf


@dataclass
class WorkerResult:
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    reaped: list[int] = field(default_factory=list)


def _train_claimed(study, trial, spec: LadderSpec, tasks: dict, root: Path, command: str,
                   device: str | None, compile: bool, threads: int | None, res: WorkerResult) -> None:
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    from proxy_train.interrupts import StopRequested

    storage = study._storage
    frozen = storage.get_trial(trial._trial_id)
    key = frozen.user_attrs.get(TASK_ATTR) or frozen.system_attrs.get("fixed_params", {}).get("task")
    task = tasks.get(key)
    if task is None:
        storage.set_trial_user_attr(trial._trial_id, FAIL_ATTR, f"error: task {key!r} is not in this ladder")
        study.tell(trial, state=TrialState.FAIL)
        res.failed.append(str(key))
        return
    resumed = sorted(str(c.relative_to(root)) for c in task.out_dir.rglob("ckpt.pt")) if task.out_dir.is_dir() else []
    for k, v in ((WORKER_ATTR, worker_label()), ("worker_host", socket.gethostname()), ("device", device or "auto"),
                 ("resumed_from", resumed)):
        storage.set_trial_user_attr(trial._trial_id, k, v)
    try:
        with _Heartbeat(storage, trial._trial_id):
            if not task.is_done():
                run_task(spec, task, command, device=device, compile=compile, threads=threads)
    except (KeyboardInterrupt, StopRequested):
        _fail_and_retry(study, trial._trial_id, f"interrupted: worker {worker_label()} was stopped")
        raise
    except Exception as e:
        storage.set_trial_user_attr(trial._trial_id, FAIL_ATTR, f"error: {type(e).__name__}: {e}"[:2000])
        study.tell(trial, state=TrialState.FAIL)
        res.failed.append(f"{key}: {type(e).__name__}: {e}")
        return
    device_name = _device_name(device)
    records = task_records(task, root, device_name)
    try:
        storage.set_trial_user_attr(trial._trial_id, RUNS_ATTR, records)
        study.tell(trial, _task_value(records))
    except UpdateFinishedTrialError:  # failed meanwhile as stale: its retry finds the run.json files final
        pass
    res.done.append(key)


def _device_name(device: str | None) -> str | None:
    try:
        import torch

        if device != "cpu" and torch.cuda.is_available():
            return torch.cuda.get_device_name()
    except Exception:  # pragma: no cover
        pass
    return None


def run_worker(study_dir: str | Path, url: str, *, runs_root: str | Path | None = None, device: str | None = None,
               compile: bool = False, threads: int | None = None, command: str = "", poll_s: float = 1.0,
               max_errors: int = 3,
               heartbeat_interval: int | None = DEFAULT_HEARTBEAT_S, grace_period: int | None = None,
               progress: bool = True) -> WorkerResult:
    """Drain the queue: claim, train (resuming from checkpoints), record, repeat; while other
    workers still run tasks, wait for them (one may die and its task come back). Returns when no
    task is waiting or running, or after ``max_errors`` failed tasks in this worker."""
    from optuna.trial import TrialState
    from tqdm import tqdm

    from proxy_train.device import resolve

    if device is not None:
        resolve(device)  # --device cuda without a GPU: a UserError before any task is claimed
    study = open_queue(study_dir, url, heartbeat_interval=heartbeat_interval, grace_period=grace_period)
    if SPEC_ATTR not in study.user_attrs:
        raise UserError(f"the ladder queue {study.study_name} has no ladder; enqueue it first (--enqueue)")
    spec = spec_from_dict(study.user_attrs[SPEC_ATTR])
    root = check_runs_root(runs_root or study.user_attrs.get(ROOT_ATTR) or study_dir)
    if not Path(spec.data).is_dir():
        raise UserError(f"data folder {spec.data} not found on {socket.gethostname()}; the workers need it at "
                        "the same path (a shared filesystem)")
    points, _ = plan_points(spec)
    tasks = {t.key: t for t in tasks_for(spec, points, root)}
    res = WorkerResult()
    bar = tqdm(total=len(tasks), desc=f"ladder tasks ({worker_label()})", unit="task", file=sys.stderr,
               disable=not progress)
    try:
        while len(res.failed) < max_errors:
            res.reaped += reap(study)
            trial = claim(study)
            if trial is None:
                states = [t.state for t in study.get_trials(deepcopy=False)]
                bar.update(max(0, states.count(TrialState.COMPLETE) - bar.n))
                if TrialState.WAITING not in states and TrialState.RUNNING not in states:
                    break
                time.sleep(poll_s)
                continue
            _train_claimed(study, trial, spec, tasks, root, command, device, compile, threads, res)
            bar.update(max(0, len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) - bar.n))
    finally:
        bar.close()
    return res


__all__ = ["enqueue_ladder", "run_worker", "claim", "reap", "open_queue", "spec_to_dict", "spec_from_dict",
           "queue_name", "check_runs_root", "is_final"]
