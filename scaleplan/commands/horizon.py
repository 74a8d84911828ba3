"""`scaleplan horizon-check`: the optimal μP LR at several training horizons, and its power-law slope."""
from __future__ import annotations

import argparse

from planner.provenance import command_line
from scaleplan.commands import emit, positive_int


def register(sub) -> None:
    h = sub.add_parser("horizon-check", help="optimal LR vs training length at one width (horizon exponent)",
                       description="Sweep log2 LR at several horizons (optimizer steps) and seeds at one "
                                   "width under muP, find each optimum and fit log2 lr* = a + b log2 tokens.",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="Each (horizon, seed) runs a window of the --lrs grid, widened until the "
                              "optimum is bracketed.\nResumable: rerun the same command. Writes horizon.json, "
                              "horizon.html, runs.csv, study.yaml.\nReference: Bjorck et al. 2024, "
                              "arXiv:2409.19913 (the optimal LR falls with the token horizon).")
    h.add_argument("--data", required=True, help="data folder from `scaleplan data prepare`")
    h.add_argument("--out", required=True, help="output folder (per-run studies go to OUT/runs/)")
    h.add_argument("--width", type=positive_int, default=64, help="proxy width (default 64; base width = width)")
    h.add_argument("--horizons", default="50,200,800,3200",
                   help="optimizer steps per run, at least 3 (default 50,200,800,3200)")
    h.add_argument("--seeds", default="0,1", help="model/data seeds (default 0,1)")
    h.add_argument("--lrs", default="-12:-2:0.5", help="log2 LR grid START:STOP:STEP or a list (default -12:-2:0.5)")
    h.add_argument("--center", type=float, default=-7.0,
                   help="log2 LR around which the shortest horizon starts (default -7)")
    h.add_argument("--schedule", choices=("cosine", "wsd", "constant"), default="cosine",
                   help="LR schedule (default cosine, as `scaleplan sweep`)")
    h.add_argument("--n-layers", type=positive_int, default=2, help="proxy depth (default 2)")
    h.add_argument("--head-dim", type=positive_int, default=16, help="head size (default 16)")
    h.add_argument("--batch", type=positive_int, default=16, help="sequences per step (default 16)")
    h.add_argument("--seq-len", type=positive_int, default=64, help="tokens per sequence (default 64)")
    h.add_argument("--json", action="store_true")
    h.set_defaults(func=cmd_horizon)


def cmd_horizon(args) -> int:
    from proxy_train import horizon
    from proxy_train.transfer import parse_lr_grid

    res = horizon.run_horizon_check(
        data=args.data, out=args.out, width=args.width, horizons=horizon.parse_horizons(args.horizons),
        seeds=horizon.parse_seeds(args.seeds), lrs=parse_lr_grid(args.lrs), n_layers=args.n_layers,
        head_dim=args.head_dim, batch=args.batch, seq_len=args.seq_len, schedule=args.schedule,
        center=args.center, command=command_line())
    emit(args, res, horizon.human_report(res))
    return 0
