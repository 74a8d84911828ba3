"""`scaleplan curve-law`: fit the loss-curve law with LR annealing to a ladder study's curves and
predict every (size, budget) point under another schedule or length.

Law: L(s) = L0 + A S1^-alpha - C S2 (Tissue et al. 2024, arXiv:2408.11029, Eq. 1), one fit per
size on all its runs' per-step train losses and validation points (planner/curve_law.py,
proxy_train/curve_fit.py). Writes curve_law.json (per-size parameters and fit residuals), a
predicted runs table (the columns `scaleplan fit` reads, plus ``predicted_by``) and an HTML figure.
"""
from __future__ import annotations

import argparse

from scaleplan.commands import emit, float_list, output_file


def register(sub) -> None:
    p = sub.add_parser(
        "curve-law", help="fit a loss-curve law (Tissue et al. 2024) per size; predict losses under other schedules",
        description="Fit L(s) = L0 + A*S1^-alpha - C*S2 (S1: area under the LR-factor curve, S2: LR annealing area "
                    "with momentum lam; Tissue et al. 2024, arXiv:2408.11029, Eq. 1) to the loss curves of each size "
                    "of a ladder study, then predict the final validation loss of each --predict-tokens-per-param "
                    "budget under --schedule. Loss in nats.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Writes OUT (default STUDY/curve_law.json), OUT's stem + '_runs.csv' (fit it with `scaleplan fit "
               "RUNS --n-col non_embedding_params --d-col tokens --loss-col final_val_loss`) and + '.html'.")
    p.add_argument("--study", required=True, metavar="DIR", help="ladder study folder (runs.csv and run folders)")
    p.add_argument("--predict-tokens-per-param", type=float_list, default=[4.0, 6.0, 8.0, 12.0, 16.0], metavar="M,M,...",
                   help="budgets to predict, tokens per non-embedding parameter (default 4,6,8,12,16)")
    p.add_argument("--schedule", choices=("cosine", "wsd"), default="cosine",
                   help="schedule of the predicted runs (default cosine; wsd: 1-sqrt cooldown over the study's "
                        "cooldown fraction)")
    p.add_argument("--lam", type=_lam, metavar="LAM",
                   help="annealing-momentum decay factor in [0, 1) (default: chosen per size by the fit's robust cost)")
    p.add_argument("--out", type=output_file, metavar="FILE", help="curve_law.json path (default STUDY/curve_law.json)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def _lam(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0.0 <= v < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return v


def _paths(args):
    from pathlib import Path

    out = Path(args.out) if args.out else Path(args.study) / "curve_law.json"
    stem = out.with_suffix("")
    return out, Path(f"{stem}_runs.csv"), Path(f"{stem}.html")


def run(args) -> int:
    import pandas as pd

    from planner import __version__
    from planner.curve_law_plot import fig_curves
    from planner.errors import UserError
    from planner.fit_plots import fit_report_html
    from planner.io import atomic_write, check_creatable, write_json
    from planner.provenance import command_line
    from proxy_train.curve_fit import fit_study

    from pathlib import Path

    if not Path(args.study).is_dir():
        raise UserError(f"--study {args.study!r} is not a folder; give a ladder study made by `scaleplan ladder`")
    out, table, html = _paths(args)
    check_creatable(out.parent, "the folder of --out")
    res = fit_study(args.study, args.predict_tokens_per_param, args.schedule, lam=args.lam)
    cmd = command_line(default="scaleplan curve-law")
    payload = {
        "law": "L(s) = L0 + A*S1^-alpha - C*S2 (+ val_offset for validation loss); Tissue et al. 2024, "
               "arXiv:2408.11029, Eq. 1; S1, S2 over LR factors of the peak (planner/curve_law.py)",
        "loss_units": "nats/token", "study": str(args.study), "schedule": args.schedule,
        "predict_tokens_per_param": args.predict_tokens_per_param,
        "sizes": {size: law.to_dict() for size, law in res["laws"].items()},
        "predicted_runs": str(table), "meta": {"scaleplan": __version__, "command": cmd},
    }
    # all three written only after every fit succeeded: nothing half-written on bad input
    atomic_write(table, pd.DataFrame(res["rows"]).to_csv(index=False))
    atomic_write(html, fit_report_html([fig_curves(res["plot"])], f"scaleplan {__version__}; {cmd}"))
    write_json(out, payload)
    emit(args, payload, _human(res, out, table, html))
    return 0


def _human(res: dict, out, table, html) -> str:
    lines = ["curve law per size (nats; L0 + A*S1^-alpha - C*S2, lam = annealing momentum):"]
    for size, law in res["laws"].items():
        rv = law.fit.get("residuals", {}).get("val", {})
        lines.append(f"  {size:<10} L0 {law.L0:.3f}  A {law.A:.3f}  alpha {law.alpha:.3f}  C {law.C:.4f}  "
                     f"lam {law.lam:g}  val offset {law.val_offset:+.3f}  val residual rms "
                     f"{rv.get('rms') or float('nan'):.4f} ({rv.get('n', 0)} points)")
    lines.append(f"predicted {len(res['rows'])} points -> {table}")
    lines.append(f"wrote {out} and {html}")
    return "\n".join(lines)
