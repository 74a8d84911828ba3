"""`scaleplan study import SOURCE --out DIR`: a reference study from published runs (:mod:`planner.study_build`)."""
from __future__ import annotations

from pathlib import Path

from scaleplan.commands import add_workers_argument, emit, nonneg_int

#: Where the published CSVs live in this project's workspace (../shared/data/README.md).
DEFAULT_DATA = str(Path("..") / "shared" / "data" / "external")


def register(sub) -> None:
    from planner.study_import import SOURCES

    p = sub.add_parser("study", help="reference studies built from published scaling-law runs",
                       description="Study folders made from published runs, to see the fitter at real scale.")
    verbs = p.add_subparsers(dest="study_command", metavar="VERB")
    imp = verbs.add_parser(
        "import", help="import a published set of runs into a study folder, fitted and backtested",
        description="Read a published runs table, write DIR/runs.csv (run_id, N, D, C, loss, status, source), fit "
                    "L(N, D) = E + A/N^alpha + B/D^beta on the rows with status ok (Hoffmann grid, bootstrap CIs), "
                    "backtest it (fit on C <= C_max/k, predict the rest) and write fit.json, figures, fit.html, "
                    "study.yaml (source, licence, this command) and the licence notice. Sources: "
                    + "; ".join(f"{k} ({s.licence})" for k, s in SOURCES.items()) + ".")
    imp.add_argument("source", metavar="SOURCE", choices=list(SOURCES), help="one of: " + ", ".join(SOURCES))
    imp.add_argument("--out", required=True, metavar="DIR", help="the study folder to write (new, empty, or an "
                                                                    "earlier import of the same source)")
    imp.add_argument("--data", default=DEFAULT_DATA, metavar="DIR",
                     help=f"folder with the published CSVs (default {DEFAULT_DATA})")
    imp.add_argument("--config", metavar="KEY",
                     help="porian2024 only: which isoFLOP setting (default rw/base/short/chinchilla/standard/val, "
                          "the one trained like Chinchilla)")
    imp.add_argument("--bootstrap", type=nonneg_int, default=200, metavar="K",
                     help="bootstrap resamples behind the CIs and prediction intervals (default 200)")
    imp.add_argument("--seed", type=nonneg_int, default=0, help="bootstrap seed (default 0)")
    imp.add_argument("--backtest-factors", default="3,10,30,100", metavar="K,K,...",
                     help="backtest factors k (default 3,10,30,100)")
    imp.add_argument("--no-fit", action="store_true", help="write runs.csv, study.yaml and the licence only")
    add_workers_argument(imp, default=1, help="bootstrap processes (default 1)")
    imp.add_argument("--json", action="store_true", help="print study.yaml's record as JSON")
    imp.set_defaults(func=cmd_import)
    p.set_defaults(func=lambda args: _no_verb(p))


def _no_verb(p) -> int:
    p.print_help()
    return 2


def cmd_import(args) -> int:
    from planner.backtest import parse_factors
    from planner.provenance import command_line
    from planner.study_build import build_study

    factors = parse_factors(args.backtest_factors)
    rec = build_study(args.source, args.out, data_dir=args.data, config=args.config, bootstrap=args.bootstrap,
                      seed=args.seed, factors=factors, workers=args.workers, fit=not args.no_fit,
                      command=command_line(), progress=True)
    lines = [f"{rec['source']}: {rec['rows']} runs ({rec['rows_ok']} with status ok) -> {args.out}",
             f"  licence: {rec['licence']}" + ("" if rec["may_commit"] else "  (do not commit this folder)")]
    fit = rec.get("fit")
    if fit:
        lines.append(f"  fit: E={fit['E']:.4g} A={fit['A']:.4g} B={fit['B']:.4g} alpha={fit['alpha']:.4g} "
                     f"beta={fit['beta']:.4g} converged={fit['converged']}")
    for key, g in (rec.get("backtest_goal") or {}).items():
        lines.append(f"  backtest at >= {key}: " + ("no predictions reach it" if g is None else
                     f"max |err| {g['max_abs_rel_error']:.2%}, {g['frac_inside_interval']:.0%} inside the 95% PI "
                     f"over {g['n']}: {'met' if g['met'] else 'missed'} (goal 1.5%, 90%)"))
    lines.append(f"  wrote {args.out}/study.yaml")
    emit(args, rec, "\n".join(lines))
    return 0
