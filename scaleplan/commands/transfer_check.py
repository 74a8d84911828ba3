"""`scaleplan transfer-check`: μTransfer check, the LR optimum's drift across widths under μP and SP."""
from __future__ import annotations

import argparse
from pathlib import Path

from planner.errors import UserError

from planner.provenance import command_line
from proxy_train.transfer import MUP_GOAL, SP_GOAL  # the library's goals (no torch at import)
from scaleplan.commands import add_workers_argument, emit, guards
from scaleplan.commands.sbatch_options import add_sbatch_arguments, shared_url, wants_sbatch, write_sbatch
from scaleplan.commands.sweep import add_proxy_options

QUEUE_HELP = """\
One grid, many machines (an RDB storage shared by all):
  scaleplan transfer-check --out runs/tc --data D --storage postgresql://u@db/x --enqueue   # once
  scaleplan transfer-check --out runs/tc --storage postgresql://u@db/x --worker             # on each machine
  scaleplan transfer-check --out runs/tc --data D --storage URL --emit-sbatch tc.sbatch      # SLURM array
Workers need the data folder at the same path; a killed worker's cell is retried after the grace
period; every worker that sees the grid finished writes transfer.json from the storage.
"""


def register(sub) -> None:
    t = sub.add_parser("transfer-check", help="muTransfer check: LR optimum drift across widths, muP vs SP",
                       description="Sweep log2 LR on a grid at several widths under muP and SP (everything "
                                   "else fixed) and measure how far the optimal LR moves (octaves).",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=f"Goal (Tensor Programs V, Fig. 1): muP drift <= {MUP_GOAL} octave, SP >= {SP_GOAL} over 8x width.\n"
                              "Resumable: rerun the same command. Writes transfer.json, transfer.html, runs.csv.\n"
                              "--record-into STUDY/hparams.yaml (or STUDY) also writes the result as the file's\n"
                              "`transfer` record, which the plan's hyperparameter quality gate reads; without\n"
                              "--data it only re-analyses the finished check in --out and records it.")
    t.add_argument("--out", required=True, type=guards.folder, help="output (study) folder")
    t.add_argument("--widths", type=guards.widths, default=[64, 128, 256, 512],
                   help="proxy widths, e.g. 64,128,256,512 (default)")
    t.add_argument("--lrs", default="-12:-5:1", help="log2 LR grid START:STOP:STEP inclusive, or a list "
                                                     "like -10,-9,-8 (default -12:-5:1)")
    t.add_argument("--param", default="mup,sp", help="parameterizations: mup,sp (default both)")
    add_workers_argument(t, default=1, help="local worker processes")
    t.add_argument("--init-std", type=guards.init_std, default=0.02, help="fixed base init std (default 0.02)")
    t.add_argument("--schedule", choices=("cosine", "wsd", "constant"), default="constant",
                   help="LR schedule (default constant, as nanoGPT-mup's Shakespeare transfer runs)")
    t.add_argument("--objective", default="proxy", help=argparse.SUPPRESS)
    t.add_argument("--record-into", metavar="HPARAMS",
                   help="hparams.yaml (or a study folder holding one) to write this check's result into as its "
                        "`transfer` record (refused if the parameterization, base width or corpus differ)")
    t.add_argument("--json", action="store_true")
    q = t.add_argument_group("many machines", QUEUE_HELP)
    q.add_argument("--storage", help="Optuna storage URL (postgresql://...; default: a journal file in --out; the "
                                     "password may come from $SCALEPLAN_SWEEP_STORAGE)")
    q.add_argument("--enqueue", action="store_true", help="enqueue the grid's cells (needs --data), train nothing")
    q.add_argument("--worker", action="store_true",
                   help="train cells of the check enqueued in --storage under --out's folder name (no --data)")
    q.add_argument("--heartbeat-interval", type=guards.seconds, default=60,
                   help="RDB storage: seconds between worker heartbeats (default 60)")
    q.add_argument("--grace-period", type=guards.seconds, default=None,
                   help="RDB storage: seconds without heartbeat before a cell is retried (default 2x)")
    add_sbatch_arguments(t)
    # Defaults: the 2-core μTransfer setting of notes §4.4 (2 layers, d_head 16, T=64, B=16, 150 steps).
    add_proxy_options(t, steps_default=150, head_dim=16, seq_len=64)
    t.set_defaults(func=cmd_transfer)


def cmd_transfer(args) -> int:
    from proxy_train import transfer
    from proxy_train.study import check_study_folder

    check_study_folder(args.out)  # a data or run folder is refused before anything is written
    lrs, params = transfer.parse_lr_grid(args.lrs), transfer.parse_params(args.param)
    if wants_sbatch(args):
        return _sbatch(args, transfer, lrs, params)
    if args.worker:
        return _worker(args, transfer)
    if args.enqueue:
        if args.data is None:
            raise UserError("--enqueue needs --data (the grid to enqueue)")
        from proxy_train.transfer_queue import require_rdb

        require_rdb(shared_url(args) or "journal", "transfer-check --enqueue")
        s = _run(args, transfer, lrs, params, enqueue_only=True, storage=shared_url(args))
        name = Path(args.out).resolve().name
        emit(args, s, f"queued the grid of {s['target_trials']} cell(s) as study {name} in {s['storage']}; start "
                      f"workers: scaleplan transfer-check --out {args.out} --storage URL --worker")
        return 0
    if args.data is None:  # re-analyse a finished check (e.g. to record it) without running anything
        res = _analyse_only(args, transfer)
        emit(args, res, transfer.human_report(res))
        return 0
    res = _run(args, transfer, lrs, params, storage=args.storage)
    emit(args, res, transfer.human_report(res))
    return 0


def _run(args, transfer, lrs, params, *, storage, enqueue_only=False) -> dict:
    return transfer.run_transfer_check(
        data=args.data, out=args.out, widths=args.widths, lrs=lrs, params=params,
        steps=args.steps if (args.steps or args.tokens) else 150, tokens=args.tokens, n_layers=args.n_layers,
        head_dim=args.head_dim, batch=args.batch, seq_len=args.seq_len, seed=args.seed, workers=args.workers,
        init_std=args.init_std, schedule=args.schedule, objective=args.objective, command=command_line(),
        record_into=None if enqueue_only else args.record_into, storage=storage, enqueue_only=enqueue_only,
        heartbeat_interval=args.heartbeat_interval, grace_period=args.grace_period)


def _worker(args, transfer) -> int:
    """--worker: drain the enqueued grid, then rebuild the result files from the storage."""
    from proxy_train import transfer_queue

    if args.data is not None:
        raise UserError("--worker takes the grid (and its data folder) from the storage; leave --data out")
    url = shared_url(args)
    transfer_queue.require_rdb(url or "journal", "transfer-check --worker")
    summary = transfer_queue.join(args.out, url, workers=args.workers, heartbeat_interval=args.heartbeat_interval,
                                  grace_period=args.grace_period, command=command_line())
    res = transfer.finish(args.out, summary, storage=url)
    if args.record_into is not None:
        res["recorded_into"] = str(transfer.record_into_hparams(args.record_into, res))
    emit(args, res, transfer.human_report(res))
    return 0


def _worker_args(args) -> list[str]:
    out = ["transfer-check", "--out", str(Path(args.out).resolve()), "--worker",
           "--heartbeat-interval", str(args.heartbeat_interval)]
    return out + (["--grace-period", str(args.grace_period)] if args.grace_period else [])


def _sbatch(args, transfer, lrs, params) -> int:
    """--emit-sbatch: enqueue the grid (with --data) or use the one enqueued, then write the array job
    (one task per cell unless --array-tasks)."""
    from proxy_train import transfer_queue

    if args.worker or args.enqueue:
        raise UserError("--emit-sbatch writes the workers' job itself; leave --worker/--enqueue out")
    url = shared_url(args)
    if args.data is not None:
        cells = len(args.widths) * len(params) * len(lrs)
        prepare = lambda: _run(args, transfer, lrs, params, storage=url, enqueue_only=True)  # noqa: E731
    else:
        transfer_queue.require_rdb(url or "journal", "transfer-check --emit-sbatch")
        cells, prepare = len(transfer_queue.read_queue(args.out, url)[1]), None
    name = Path(args.out).resolve().name
    return write_sbatch(args, command="transfer-check", name=f"transfer-{name}", worker_args=_worker_args(args),
                        tasks=cells, comment=f"scaleplan transfer-check workers for {Path(args.out).resolve()}",
                        prepare=prepare)


def _analyse_only(args, transfer) -> dict:
    """finish() on the existing check in --out, then --record-into; a UserError without a check there."""
    from pathlib import Path

    from planner.errors import UserError
    from proxy_train.study import read_study_meta

    if not (Path(args.out) / "study.yaml").is_file() or read_study_meta(args.out).spec.kind != "transfer":
        raise UserError(f"--out {args.out} holds no transfer check; pass --data to run one")
    if args.record_into is None:
        raise UserError("without --data nothing runs: pass --data to run (or resume) the check, or "
                        "--record-into HPARAMS to record the finished check in --out")
    previous = Path(args.out) / "transfer.json"  # keep the recorded wall time of the runs
    try:
        wall = transfer.read_result(previous).get("wall_s") if previous.is_file() else None
    except UserError:  # a damaged old result is rewritten below; only its wall time is lost
        wall = None
    res = transfer.finish(args.out, {"wall_s": wall} if wall is not None else None, storage=shared_url(args))
    res["recorded_into"] = str(transfer.record_into_hparams(args.record_into, res))
    return res
