"""What a ladder work queue holds, read from its Optuna storage alone: runs.csv and ``--status``.

Conventions (the queue itself: :mod:`proxy_train.ladder_queue`):
* runs.csv (and runs.parquet) is rebuilt from the COMPLETE trials' ``runs`` user attrs (run.json
  without the curve), so any machine that reaches the storage can write it; ``run_dir`` is relative
  to the runs root.
* Status: ``done`` = COMPLETE trials (with tokens/s and MFU averaged over their runs), ``running`` =
  RUNNING trials with the worker's host and pid, ``queued`` = WAITING, ``retried`` = FAIL trials that
  Optuna's retry callback re-enqueued (a killed or interrupted worker), ``failed`` = FAIL trials not
  retried (an error, or retries exhausted), with their ``fail_reason``.
"""
from __future__ import annotations

from pathlib import Path

from planner.provenance import mask_url
from proxy_train.ladder_plan import plan_points
from proxy_train.ladder_queue import FAIL_ATTR, RUNS_ATTR, SPEC_ATTR, TASK_ATTR, WORKER_ATTR, open_queue, spec_from_dict
from proxy_train.ladder_table import RunRecord, rows_from_records, write_table


def queue_records(study) -> dict[str, dict]:
    """Run folder -> run record, merged over the COMPLETE trials."""
    from optuna.trial import TrialState

    out: dict[str, dict] = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        out.update(t.user_attrs.get(RUNS_ATTR) or {})
    return out


def write_runs_table(study_dir: str | Path, url: str, *, parquet: bool = False) -> tuple[Path, list[RunRecord]]:
    """STUDY/runs.csv (and .parquet) rebuilt from the queue's records."""
    study = open_queue(study_dir, url, heartbeat_interval=None)
    spec = spec_from_dict(study.user_attrs[SPEC_ATTR])
    points, _ = plan_points(spec)
    rows = rows_from_records(spec, points, queue_records(study))
    from planner.io import ensure_dir

    return write_table(rows, ensure_dir(study_dir, "study folder"), parquet), rows


def queue_status(study_dir: str | Path, url: str) -> dict:
    """Tasks done / running (with their worker host) / failed / queued, from the storage alone."""
    from optuna.trial import TrialState

    study = open_queue(study_dir, url, heartbeat_interval=None)
    trials = study.get_trials(deepcopy=False)
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    out: dict = {"queue": study.study_name, "storage": mask_url(url), "done": [], "running": [], "failed": [],
                 "retried": [], "queued": []}
    for t in trials:
        key = t.user_attrs.get(TASK_ATTR)
        item = {"task": key, "trial": t.number}
        if t.state == TrialState.COMPLETE:
            runs = t.user_attrs.get(RUNS_ATTR) or {}
            mfus = [(r.get("throughput") or {}).get("mfu") for r in runs.values()]
            tps = [(r.get("throughput") or {}).get("tokens_per_s") for r in runs.values()]
            out["done"].append({**item, "value": t.value, "points": len(runs),
                                "tokens_per_s": _mean(tps), "mfu": _mean(mfus)})
        elif t.state == TrialState.RUNNING:
            out["running"].append({**item, "worker": t.user_attrs.get(WORKER_ATTR),
                                   "host": t.user_attrs.get("worker_host"),
                                   "started": t.datetime_start.isoformat() if t.datetime_start else None})
        elif t.state == TrialState.WAITING:
            out["queued"].append(item)
        elif t.state == TrialState.FAIL:
            (out["retried"] if t.number in retried else out["failed"]).append(
                {**item, "reason": t.user_attrs.get(FAIL_ATTR, "heartbeat stale: the worker stopped")})
    out["counts"] = {k: len(out[k]) for k in ("done", "running", "failed", "retried", "queued")}
    return out


def _mean(vals) -> float | None:
    vals = [v for v in vals if isinstance(v, (int, float))]
    return sum(vals) / len(vals) if vals else None


def is_done(study_dir: str | Path, url: str) -> bool:
    c = queue_status(study_dir, url)["counts"]
    return c["running"] == 0 and c["queued"] == 0 and c["failed"] == 0
