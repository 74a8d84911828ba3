"""`scaleplan ladder` as a shared work queue: --enqueue, --worker, --status, --emit-sbatch / --dry-run.

No torch at module level. The queue: :mod:`proxy_train.ladder_queue`; SLURM: :mod:`proxy_train.slurm`.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from planner.errors import UserError
from scaleplan.commands import emit, positive_int
from scaleplan.commands.sbatch_options import add_sbatch_arguments

QUEUE_EPILOG = """\
Work queue (many machines): the ladder's tasks (one per size for WSD: the stable phase and its
branches; one per point for cosine) become trials of the Optuna study <study>-ladder in --storage
(default: STUDY/optuna.journal, one machine; postgresql://... for many). Steps:
  scaleplan ladder --study S --data D --hparams H --storage URL --enqueue     # once: plan + enqueue
  scaleplan ladder --study S --storage URL --worker --runs-root /shared/R    # on every machine
  scaleplan ladder --study S --storage URL --status                          # done/running/failed/queued
  scaleplan ladder --study S --data D --hparams H --storage URL --emit-sbatch ladder.sbatch --array-tasks 8
"""


def add_queue_arguments(p) -> None:
    g = p.add_argument_group("work queue (several processes or machines)", QUEUE_EPILOG)
    g.add_argument("--storage", help="Optuna storage URL of the queue (default: the journal file STUDY/optuna.journal; "
                                     "the password may come from $SCALEPLAN_SWEEP_STORAGE)")
    g.add_argument("--enqueue", action="store_true", help="plan the ladder and enqueue its tasks, train nothing")
    g.add_argument("--worker", action="store_true",
                   help="drain the queue with --workers processes here (plans + enqueues first when --data is given)")
    g.add_argument("--status", action="store_true", help="print tasks done / running / failed / queued")
    g.add_argument("--runs-root", help="folder receiving runs/ (checkpoints, run.json); may be a shared "
                                       "filesystem (default: the study folder)")
    g.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="where workers train: auto (cuda if torch sees a GPU), cpu or cuda (bf16 autocast)")
    g.add_argument("--compile", action="store_true", help="torch.compile the proxies")
    g.add_argument("--threads", type=positive_int, default=1, help="torch threads per worker (1)")
    g.add_argument("--heartbeat-interval", type=positive_int, default=60,
                   help="RDB storages: seconds between worker heartbeats (60)")
    g.add_argument("--grace-period", type=positive_int, default=None,
                   help="RDB storages: a task silent this long is failed and re-enqueued (2 x interval)")
    add_sbatch_arguments(p, gpus_option=False, cpus_default=None, cpus_help="SLURM cpus per task (default --threads)",
                         tasks_help="SLURM array size (default: the task count)",
                         help="SLURM: --emit-sbatch FILE writes an array job of queue workers (one GPU each with "
                              "--device cuda); --dry-run prints it instead.")


def is_queue_mode(args) -> bool:
    return bool(args.worker or args.status or args.enqueue or args.emit_sbatch or args.dry_run or args.storage)


def storage_url(args) -> str:
    from proxy_train.sweep_storage import STORAGE_ENV, journal_url

    return args.storage or os.environ.get(STORAGE_ENV) or journal_url(args.study)


def _queue_kw(args) -> dict:
    return {"heartbeat_interval": args.heartbeat_interval, "grace_period": args.grace_period}


def cmd_queue(args, *, load_spec, holdout_lines) -> int:
    """The queue modes of `scaleplan ladder`; ``load_spec(args)`` plans the ladder and
    ``holdout_lines(args, summary)`` runs the held-out check (both from scaleplan.commands.ladder)."""
    url = storage_url(args)
    if args.status:
        return _status(args, url)
    if args.dry_run and not args.emit_sbatch:
        raise UserError("--dry-run prints the file of --emit-sbatch FILE; give --emit-sbatch too")
    if bool(args.data) != bool(args.hparams):
        raise UserError("give both --data and --hparams to plan the ladder (or neither, to work on a queued one)")
    if args.data and args.dry_run:  # print the array job for the planned tasks; enqueue and write nothing
        enq = {"tasks": _planned_tasks(args, load_spec(args))}
    elif args.data:
        enq = _enqueue(args, url, load_spec(args))
    elif args.enqueue:
        raise UserError("--enqueue needs --data and --hparams (the ladder to plan)")
    else:
        enq = None
    if args.emit_sbatch:
        return _sbatch(args, url, enq)
    if args.worker:
        return _work(args, url, holdout_lines)
    if enq is None:
        raise UserError("--storage alone does nothing: add --data and --hparams (enqueue), --worker, --status or "
                        "--emit-sbatch FILE")
    emit(args, enq, f"queued {len(enq['enqueued'])} of {len(enq['tasks'])} task(s) in {enq['queue']}; start "
                    f"workers: scaleplan ladder --study {args.study} --storage URL --worker")
    return 0


def _planned_tasks(args, spec) -> list[str]:
    """The keys of the tasks ``spec`` would enqueue (nothing written: for --dry-run)."""
    from proxy_train.ladder import plan_points
    from proxy_train.ladder_tasks import tasks_for

    points, _ = plan_points(spec)
    return [t.key for t in tasks_for(spec, points, Path(args.runs_root or args.study))]


def _enqueue(args, url: str, spec) -> dict:
    from planner.provenance import command_line, mask_url
    from proxy_train.ladder import plan_points, spec_record, update_study_yaml
    from proxy_train.ladder_queue import check_runs_root, enqueue_ladder, queue_name

    root = check_runs_root(args.runs_root or args.study)
    points, skipped = plan_points(spec)
    update_study_yaml(Path(args.study), "ladder", spec_record(spec, points, skipped, command_line()))
    enq = enqueue_ladder(spec, args.study, url, runs_root=root, **_queue_kw(args))
    update_study_yaml(Path(args.study), "ladder_queue", {"queue": queue_name(args.study), "storage": mask_url(url),
                                                        "runs_root": str(root)})
    return enq


def _status(args, url: str) -> int:
    from proxy_train.ladder_queue_results import queue_status

    st = queue_status(args.study, url)
    c = st["counts"]
    lines = [f"ladder queue {st['queue']} in {st['storage']}: {c['done']} done, {c['running']} running, "
             f"{c['failed']} failed, {c['queued']} queued ({c['retried']} retried after a worker stopped)"]
    for d in st["done"]:
        mfu = f", MFU {d['mfu']:.1%}" if d["mfu"] is not None else ""
        tps = f", {d['tokens_per_s']:,.0f} tokens/s" if d["tokens_per_s"] else ""
        lines.append(f"  done    {d['task']} (trial {d['trial']}): {d['points']} point(s), loss {d['value']:.4f}{tps}{mfu}")
    lines += [f"  running {r['task']} (trial {r['trial']}) on {r['worker']} since {r['started']}" for r in st["running"]]
    lines += [f"  failed  {f['task']} (trial {f['trial']}): {f['reason']}" for f in st["failed"]]
    lines += [f"  queued  {q['task']} (trial {q['trial']})" for q in st["queued"]]
    emit(args, st, "\n".join(lines))
    return 0


def _worker_args(args, *, workers: int, runs_root: str | None) -> list[str]:
    out = ["ladder", "--study", str(Path(args.study).resolve()), "--worker", "--workers", str(workers),
           "--device", args.device, "--threads", str(args.threads),
           "--heartbeat-interval", str(args.heartbeat_interval), "--no-check"]
    if runs_root:
        out += ["--runs-root", runs_root]
    if args.grace_period:
        out += ["--grace-period", str(args.grace_period)]
    if args.compile:
        out.append("--compile")
    return out


def _sbatch(args, url: str, enq: dict | None) -> int:
    from proxy_train.slurm import ArrayJob, emit_sbatch

    n = args.array_tasks or (len(enq["tasks"]) if enq else None)
    if n is None:
        raise UserError("--emit-sbatch without --data/--hparams needs --array-tasks N (how many workers)")
    job = ArrayJob(name=f"ladder-{Path(args.study).resolve().name}", tasks=n,
                   cpus_per_task=args.cpus_per_task or args.threads, gpus_per_task=1 if args.device == "cuda" else 0,
                   time=args.time, output=args.slurm_output, partition=args.partition, mem=args.mem).check()
    root = str(Path(args.runs_root).resolve()) if args.runs_root else None
    if url.startswith("journal:"):
        print("note: a journal file storage is for workers on one machine (file locks over NFS may race, "
              "Optuna docs); use --storage postgresql://... for a cluster", file=sys.stderr)
    emit_sbatch(job, _worker_args(args, workers=1, runs_root=root), storage=url, path=args.emit_sbatch,
                dry_run=args.dry_run, comment=f"scaleplan ladder queue workers for {Path(args.study).resolve()}")
    if not args.dry_run:
        emit(args, {"sbatch": args.emit_sbatch, "array_tasks": n},
             f"wrote {args.emit_sbatch} ({n} array task(s)); submit it with: sbatch {args.emit_sbatch}")
    return 0


def _spawn(args, url: str) -> int:
    """``--workers N`` > 1: N worker processes here (one GPU each when several are visible)."""
    from proxy_train.device import worker_env
    from proxy_train.sweep_storage import STORAGE_ENV

    cmd = [sys.executable, "-m", "scaleplan.cli", *_worker_args(args, workers=1, runs_root=args.runs_root)]
    procs = [subprocess.Popen(cmd, env={**worker_env(i, args.device), STORAGE_ENV: url}) for i in range(args.workers)]
    try:
        codes = [p.wait() for p in procs]
    except KeyboardInterrupt:
        codes = [p.wait() for p in procs]  # each got the SIGINT: it checkpoints and re-enqueues its task
        raise
    bad = [c for c in codes if c != 0]
    if bad:
        print(f"ladder: {len(bad)} of {len(codes)} worker process(es) failed (exit {bad}); their tasks are back in "
              "the queue or marked failed: see --status", file=sys.stderr)
    return (bad[0] if bad[0] > 0 else 1) if bad else 0


def _work(args, url: str, holdout_lines) -> int:
    from planner.provenance import command_line
    from proxy_train.ladder_queue import run_worker
    from proxy_train.ladder_queue_results import queue_status, write_runs_table

    if args.workers > 1:
        rc = _spawn(args, url)
        if rc:
            return rc
        res = None
    else:
        res = run_worker(args.study, url, runs_root=args.runs_root, device=args.device, compile=args.compile,
                         threads=args.threads, command=command_line(), **_queue_kw(args))
    path, rows = write_runs_table(args.study, url, parquet=args.parquet)
    st = queue_status(args.study, url)
    summary = {"runs_table": str(path), "rows": len(rows), "counts": st["counts"],
               "this_worker": None if res is None else {"done": res.done, "failed": res.failed, "reaped": res.reaped}}
    c = st["counts"]
    lines = [f"ladder queue {st['queue']}: {c['done']} done, {c['running']} running, {c['failed']} failed, "
             f"{c['queued']} queued; wrote {path} ({len(rows)} rows)"]
    if res is not None and res.failed:
        lines.append(f"  this worker's failed tasks: {'; '.join(res.failed)}")
    if not args.no_check and c["running"] == c["queued"] == c["failed"] == 0:
        lines += holdout_lines(args, summary)
    emit(args, summary, "\n".join(lines))
    return 3 if (res is not None and res.failed) else 0
