"""`scaleplan coord-check`: the μP coordinate check (μP passes, SP fails).
"""
from __future__ import annotations

from pathlib import Path

from proxy_train.coord_check import SLOPE_TOL  # the library's pass criterion (no torch at import)
from scaleplan.commands import emit, guards


def register(sub) -> None:
    c = sub.add_parser("coord-check", help="μP coordinate check: activations must not grow with width",
                       description="Train each width a few AdamW steps on one fixed batch (mup's get_coord_data) and "
                                   f"fit log2 mean|activation| against log2 width; pass iff |slope| < {SLOPE_TOL} for every "
                                   "module at every step t >= 2. μP should pass, SP should fail.")
    c.add_argument("--param", choices=("mup", "sp"), default="mup")
    c.add_argument("--widths", type=guards.coord_widths, default=[32, 64, 128, 256],
                   help=f"widths, each at most {guards.MAX_COORD_WIDTH} (default 32,64,128,256)")
    c.add_argument("--steps", type=guards.coord_steps, default=4)
    c.add_argument("--lr", type=guards.lr, default=1e-2, help="AdamW LR (larger than a training LR; 0.01)")
    c.add_argument("--n-layers", type=guards.coord_layers, default=2)
    c.add_argument("--head-dim", type=guards.head_dim, default=16, help="even (RoPE); default 16")
    c.add_argument("--seeds", type=guards.coord_seeds, default=3)
    c.add_argument("--data", help="use a batch of this data folder (default: random tokens)")
    c.add_argument("--out", type=guards.folder, help="folder for coord_check.json and coord_check.html")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_coord_check)


def cmd_coord_check(args) -> int:
    import torch

    from proxy_train.coord_check import coord_check

    torch.set_num_threads(1)
    if args.out:
        from planner.io import check_creatable

        check_creatable(args.out, "--out folder")  # before minutes of work, not after
    r = coord_check(args.param, args.widths, args.steps, args.lr, n_layers=args.n_layers, head_dim=args.head_dim,
                    seeds=args.seeds, data=args.data, out=args.out, progress=True)
    brief = {k: v for k, v in r.items() if k != "l1"}
    w = r["worst"]
    line = (f"coord check {args.param}: {'PASS' if r['passed'] else 'FAIL'} "
            f"(worst slope {w['slope']:+.3f} at {w['module']}, t={w['t']}; {r['n_failing']} module-steps "
            f"over the limit; {r['criterion']})" + (f"; figure {Path(args.out) / 'coord_check.html'}" if args.out else ""))
    emit(args, brief, line)
    return 0 if r["passed"] or args.param == "sp" else 1
