"""`scaleplan sweep` and `scaleplan sweep export`: Optuna sweeps over μP base hyperparameters.

Handlers only parse options and call :mod:`proxy_train.study` (the spec), :mod:`proxy_train.sweep`
(the run) and :mod:`proxy_train.sweep_export`; torch and optuna are imported inside them so that
``scaleplan --help`` stays fast.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from planner.provenance import command_line
from scaleplan.commands import add_workers_argument, emit, guards

SWEEP_EPILOG = """\
--trials N means N finished trials (complete or pruned); killed or interrupted trials are retried
with the same parameters, so rerunning the same command resumes a study without redoing anything.
Default storage: an Optuna journal file in the study folder (one machine, several --workers).
Several machines: --storage postgresql://user:pass@host/db (workers send heartbeats; a dead
worker's trial is retried). Then: scaleplan sweep export --study DIR -> hparams.yaml + figures.
"""


def add_proxy_options(p: argparse.ArgumentParser, *, steps_default: int, head_dim: int, seq_len: int) -> None:
    g = p.add_argument_group("proxy runs")
    g.add_argument("--data", help="data folder from `scaleplan data prepare`")
    length = g.add_mutually_exclusive_group()
    length.add_argument("--tokens", type=guards.tokens, help="training tokens per proxy run")
    length.add_argument("--steps", type=guards.steps, default=None,
                        help=f"optimizer steps per proxy run (default {steps_default})")
    g.add_argument("--n-layers", type=guards.layers, default=2, help="proxy depth (default 2)")
    g.add_argument("--head-dim", type=guards.head_dim, default=head_dim,
                   help=f"fixed head size; n_heads = width / head_dim (default {head_dim})")
    g.add_argument("--batch", type=guards.batch, default=16, help="sequences per step (default 16)")
    g.add_argument("--seq-len", type=guards.seq_len, default=seq_len,
                   help=f"tokens per sequence (default {seq_len})")
    g.add_argument("--seed", type=guards.seed, default=0, help="sampler and model seed (default 0)")


def register(sub) -> None:
    p = sub.add_parser("sweep", help="tune muP base hyperparameters on small proxies (Optuna)",
                       description="Optuna sweep over muP base hyperparameters (lr, init std, output and "
                                   "input multipliers, warmup) on small proxy widths.",
                       epilog=SWEEP_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--study", type=guards.folder, help="study folder (created, or resumed when it exists)")
    p.add_argument("--widths", type=guards.widths, default=[64], help="proxy widths, e.g. 64,128 (default 64)")
    p.add_argument("--trials", type=guards.trials, default=20, help="finished trials wanted (default 20)")
    add_workers_argument(p, default=1, help="local worker processes (default 1)")
    p.add_argument("--storage", help="Optuna storage URL (postgresql://, mysql://, sqlite:///); "
                                     "default: a journal file in the study folder")
    p.add_argument("--param", choices=("mup", "sp"), default="mup", help="parameterization (default mup)")
    p.add_argument("--sampler", choices=("tpe", "cmaes", "gp", "random"), default="tpe")
    p.add_argument("--pruner", choices=("hyperband", "asha", "median", "none"), default="hyperband",
                   help="prunes no earlier than a quarter of each run (default hyperband)")
    p.add_argument("--schedule", choices=("cosine", "wsd", "constant"), default="cosine")
    p.add_argument("--tune-wd", action="store_true", help="also search weight decay (log scale)")
    p.add_argument("--weight-decay", type=guards.weight_decay, default=0.0, help="fixed weight decay (default 0)")
    p.add_argument("--heartbeat-interval", type=guards.seconds, default=60,
                   help="RDB storage: seconds between worker heartbeats (default 60)")
    p.add_argument("--grace-period", type=guards.seconds, default=None,
                   help="RDB storage: seconds without heartbeat before a trial is retried (default 2x)")
    p.add_argument("--objective", default="proxy", help=argparse.SUPPRESS)  # tests: file.py:function
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_proxy_options(p, steps_default=200, head_dim=32, seq_len=128)
    from scaleplan.commands.sbatch_options import add_sbatch_arguments

    add_sbatch_arguments(p)
    p.set_defaults(func=cmd_sweep)

    ss = p.add_subparsers(dest="sweep_cmd", metavar="{export}")
    e = ss.add_parser("export", help="trials table, hparams.yaml and figures from a study",
                      description="Write trials.csv|parquet, hparams.yaml (best trial) and HTML figures "
                                  "(history, parallel coordinates, slice, importance, LR vs loss per width) "
                                  "into the study folder.")
    e.add_argument("--study", required=True, help="study folder")
    e.add_argument("--format", choices=("csv", "parquet"), default="csv")
    e.add_argument("--storage", help="storage URL, when the study's needs a password")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_export)


def cmd_sweep(args) -> int:
    from planner.errors import UserError
    from proxy_train import sweep
    from proxy_train.study import check_study_folder, make_spec

    if args.study is None or args.data is None:
        raise UserError("scaleplan sweep needs --study DIR and --data DIR (see `scaleplan sweep --help`)")
    check_study_folder(args.study)
    steps = args.steps if (args.steps or args.tokens) else 200
    spec = make_spec(data=args.data, widths=args.widths, param=args.param, steps=steps,
                     tokens=args.tokens, sampler=args.sampler, pruner=args.pruner, seed=args.seed,
                     n_layers=args.n_layers, batch=args.batch, seq_len=args.seq_len, head_dim=args.head_dim,
                     schedule=args.schedule, tune_wd=args.tune_wd, weight_decay=args.weight_decay,
                     objective=args.objective)
    from scaleplan.commands.sbatch_options import shared_url, wants_sbatch, write_sbatch

    if wants_sbatch(args):  # every array task runs this same sweep as one worker against the storage
        name = Path(args.study).resolve().name
        return write_sbatch(args, command="sweep", name=f"sweep-{name}", worker_args=_worker_args(args),
                            tasks=args.trials, comment=f"scaleplan sweep workers for {Path(args.study).resolve()}")
    summary = sweep.run_sweep(spec, args.study, trials=args.trials, workers=args.workers, storage=shared_url(args),
                              command=command_line(), heartbeat_interval=args.heartbeat_interval,
                              grace_period=args.grace_period, progress=True)
    emit(args, summary, sweep.human_summary(summary))
    return 0


def _worker_args(args) -> list[str]:
    """The sweep command of one array task: these options, --workers 1, absolute folders (the storage
    is added by proxy_train.slurm, or read from $SCALEPLAN_SWEEP_STORAGE when it holds a password)."""
    from pathlib import Path

    out = ["sweep", "--study", str(Path(args.study).resolve()), "--data", str(Path(args.data).resolve()),
           "--widths", ",".join(map(str, args.widths)), "--trials", str(args.trials), "--workers", "1",
           "--param", args.param, "--sampler", args.sampler, "--pruner", args.pruner, "--schedule", args.schedule,
           "--weight-decay", repr(args.weight_decay), "--heartbeat-interval", str(args.heartbeat_interval),
           "--n-layers", str(args.n_layers), "--head-dim", str(args.head_dim), "--batch", str(args.batch),
           "--seq-len", str(args.seq_len), "--seed", str(args.seed), "--objective", args.objective]
    out += ["--tokens", str(args.tokens)] if args.tokens else ["--steps", str(args.steps or 200)]
    if args.grace_period:
        out += ["--grace-period", str(args.grace_period)]
    return out + (["--tune-wd"] if args.tune_wd else [])


def cmd_export(args) -> int:
    from proxy_train.sweep_export import export

    out = export(args.study, fmt=args.format, storage=args.storage)
    lines = [f"wrote {p}" for p in out["written"]]
    if "hparams" in out:
        hp = out["hparams"]
        lines.append(f"best: trial {hp['source']['trial']} val_loss={hp['source']['val_loss']:.4f} at width "
                     f"{hp['base_width']} ({hp['parameterization']}): lr={hp['lr']:.4g} init_std={hp['init_std']:.4g} "
                     f"alpha_in={hp['alpha_in']:.3g} alpha_out={hp['alpha_out']:.3g} warmup={hp['warmup_frac']:.3f}")
    for name, why in out["figures_skipped"].items():
        lines.append(f"figure {name} skipped: {why}")
    emit(args, out, "\n".join(lines))
    return 0
