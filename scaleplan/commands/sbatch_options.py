"""``--emit-sbatch FILE`` / ``--dry-run`` and the SLURM resource options of `scaleplan sweep` and
`scaleplan transfer-check` (the file itself: :mod:`proxy_train.slurm`). No torch at import."""
from __future__ import annotations

import os

from planner.errors import UserError
from scaleplan.commands import emit, positive_int

SBATCH_HELP = """\
SLURM (many machines): --emit-sbatch FILE writes an array job whose tasks each run one worker
against --storage (an RDB URL such as postgresql://user@host/db; a password is never written: the
script then needs $SCALEPLAN_SWEEP_STORAGE in the submitting shell); --dry-run prints it instead.
"""


def add_sbatch_arguments(p, *, gpus_option: bool = True, cpus_default: int | None = 1,
                         cpus_help: str = "SLURM cpus per task (1)", tasks_help: str = "SLURM array size = worker count",
                         help: str = SBATCH_HELP) -> None:
    """The SLURM options; ``gpus_option=False`` where the GPU count follows from another flag (ladder --device)."""
    g = p.add_argument_group("SLURM array job", help)
    g.add_argument("--emit-sbatch", metavar="FILE", help="write a SLURM array job of workers (submit: sbatch FILE)")
    g.add_argument("--dry-run", action="store_true", help="print the sbatch file instead of writing it")
    g.add_argument("--array-tasks", type=positive_int, default=None, help=tasks_help)
    g.add_argument("--cpus-per-task", type=positive_int, default=cpus_default, help=cpus_help)
    if gpus_option:
        g.add_argument("--gpus-per-task", type=int, choices=(0, 1), default=0, help="SLURM GPUs per task (0)")
    g.add_argument("--time", default="04:00:00", help="SLURM time limit per task (04:00:00)")
    g.add_argument("--partition", help="SLURM partition")
    g.add_argument("--mem", help="SLURM memory per task (e.g. 8G)")
    g.add_argument("--slurm-output", default="slurm-%x-%A_%a.out", help="SLURM --output pattern")


def wants_sbatch(args) -> bool:
    """Whether the command writes an sbatch file; --dry-run alone is a UserError."""
    if args.dry_run and not args.emit_sbatch:
        raise UserError("--dry-run prints the file of --emit-sbatch FILE; give --emit-sbatch too")
    return bool(args.emit_sbatch)


def shared_url(args) -> str | None:
    """--storage, else $SCALEPLAN_SWEEP_STORAGE (how a password reaches workers), else None."""
    from proxy_train.sweep_storage import STORAGE_ENV

    return args.storage or os.environ.get(STORAGE_ENV)


def write_sbatch(args, *, command: str, name: str, worker_args: list[str], tasks: int, comment: str,
                 prepare=None) -> int:
    """Check the storage and the SLURM options, run ``prepare()`` (e.g. enqueue the work; not with
    ``--dry-run``), then write (or print) the array job of ``--array-tasks`` (default ``tasks``)
    workers; the exit status. Every check comes before ``prepare``, so a bad option leaves nothing behind."""
    from proxy_train.slurm import ArrayJob, emit_sbatch, require_shared_storage

    url = shared_url(args)
    require_shared_storage(url or "journal", command)
    n = args.array_tasks or tasks
    job = ArrayJob(name=name, tasks=n, cpus_per_task=args.cpus_per_task, gpus_per_task=args.gpus_per_task,
                   time=args.time, output=args.slurm_output, partition=args.partition, mem=args.mem).check()
    if prepare is not None and not args.dry_run:  # --dry-run writes nothing, the queue included
        prepare()
    emit_sbatch(job, worker_args, storage=url, path=args.emit_sbatch, dry_run=args.dry_run, comment=comment)
    if not args.dry_run:
        emit(args, {"sbatch": args.emit_sbatch, "array_tasks": n},
             f"wrote {args.emit_sbatch} ({n} array task(s)); submit it with: sbatch {args.emit_sbatch}")
    return 0
