"""`scaleplan fit`: fit a Chinchilla law (Approach 3) or isoFLOP exponents (Approach 2) to a runs table.

Writes fit.json (docs/CONTRACTS.md) with ``--out`` and a plotly HTML report with ``--plot``.
"""
from __future__ import annotations

from planner.limits import MAX_BOOTSTRAP, MAX_HUBER_DELTA, MAX_PARAMS, MAX_TOKENS
from scaleplan.commands import (add_workers_argument, emit, nonneg_float, nonneg_int, open_fraction, output_file,
                                positive_float, positive_int)
from scaleplan.commands.guards import bounded_float, bounded_int, seed


def register(sub) -> None:
    p = sub.add_parser(
        "fit", help="fit L(N, D) = E + A/N^alpha + B/D^beta (Approach 3) or isoFLOP exponents (Approach 2)",
        description="Fit a Chinchilla scaling law to a runs table (CSV or Parquet). Approach 3 (default): "
                    "Huber fit of log-loss, multi-start over Hoffmann et al.'s 4,500-point grid, tight "
                    "convergence check, bootstrap intervals. Approach 2: per-budget parabolas in log N, "
                    "then N* ∝ C^a, D* ∝ C^b. Loss is in nats. D = C / (6 N) when only FLOPs are given.")
    p.add_argument("runs", metavar="RUNS", help="runs table: .csv or .parquet")
    p.add_argument("--n-col", required=True, metavar="COL", help="column with the parameter count N")
    p.add_argument("--loss-col", required=True, metavar="COL", help="column with the final loss (nats)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--d-col", metavar="COL", help="column with training tokens D (C = 6 N D)")
    src.add_argument("--flops-col", metavar="COL", help="column with training FLOPs C (D = C / (6 N))")
    p.add_argument("--status-col", default="status", metavar="COL",
                   help="rows whose COL is present and not 'ok' are dropped (default: status)")
    p.add_argument("--approach", type=int, choices=(2, 3), default=3, help="3: parametric fit (default); 2: isoFLOP")
    p.add_argument("--drop-top-loss", type=nonneg_int, default=0, metavar="K",
                   help="drop the K highest-loss rows before fitting (Epoch 2024 dropped 5 on Chinchilla)")
    p.add_argument("--min-tokens-per-param", type=positive_float, metavar="X",
                   help="drop rows with D/N below X")
    p.add_argument("--delta", type=bounded_float(0, MAX_HUBER_DELTA, why="residuals of log-loss are below 1"),
                   default=1e-3, help="Huber delta (default 1e-3, Hoffmann 2022)")
    p.add_argument("--grid", choices=("hoffmann", "small"), default="hoffmann",
                   help="start grid: hoffmann = 4,500 starts (default), small = 72 starts")
    p.add_argument("--bootstrap", type=bounded_int(0, MAX_BOOTSTRAP, why="1,000-2,000 resamples give stable intervals"),
                   default=0, metavar="K",
                   help="bootstrap resamples for 95%% intervals (e.g. 1000; 0 = none)")
    p.add_argument("--budget", type=positive_float, metavar="C",
                   help="also report compute-optimal N*, D*, tokens/param and loss (with intervals) at C FLOPs")
    p.add_argument("--holdout-top-compute", type=open_fraction, metavar="FRACTION",
                   help="hold out this fraction of highest-compute rows and report the extrapolation error")
    p.add_argument("--backtest-factors", metavar="K,K,...",
                   help="backtest: fit on the runs with compute <= C_max/k and predict the rest, for each k "
                        "(default 3,10,30,100; a k with too few runs is skipped and said so)")
    p.add_argument("--no-backtest", action="store_true", help="skip the backtest (approach 3 runs it by default)")
    p.add_argument("--alpha-eq-beta", action="store_true", help="tie alpha = beta (when N or D spans too little)")
    p.add_argument("--fixed-alpha", type=positive_float, metavar="A", help="fix alpha to this value")
    p.add_argument("--fixed-beta", type=positive_float, metavar="B", help="fix beta to this value")
    p.add_argument("--fixed-E", dest="fixed_E", type=positive_float, metavar="E",
                   help="fix the irreducible loss E (nats), e.g. a published value or another fit's")
    p.add_argument("--min-compute", type=positive_float, metavar="C",
                   help="drop the runs with C = 6 N D below C FLOPs before fitting")
    p.add_argument("--select", choices=("backtest",), metavar="backtest",
                   help="choose among fitting configurations (free, alpha=beta, compute-weighted, smallest runs "
                        "dropped, the forms kaplan/gadre/farseer, and the --E-prior fit when given) by an inner "
                        "backtest on the fitted runs only; the backtest then reports the whole procedure, selection "
                        "included")
    p.add_argument("--E-prior", dest="E_prior", metavar="MEAN,SD",
                   help="Gaussian prior on E (nats), applied to log E with sd/mean (planner/fit_prior.py)")
    p.add_argument("--E-prior-from", dest="E_prior_from", metavar="FIT_JSON|LAW",
                   help="prior on E from a fit.json (its E, sd = 95%% CI half-width / 1.96) or a preset law name")
    p.add_argument("--form", choices=("chinchilla", "kaplan", "gadre", "farseer"), default="chinchilla",
                   help="functional form: chinchilla (default), kaplan (2020 eq. 1.5), gadre (2024 L(C, M)), "
                        "farseer (2025); non-Chinchilla forms are recorded in meta.form, a plan uses a Chinchilla fit")
    p.add_argument("--group-by", metavar="COL", help="joint fit over the groups of COL (e.g. data sets) with "
                   "--share parameters shared; fit.json holds --group's law and meta.groups")
    p.add_argument("--group", metavar="VALUE", help="with --group-by: the group whose law fit.json holds "
                   "(default: the group with most rows)")
    p.add_argument("--share", default="alpha,beta", metavar="NAMES",
                   help="with --group-by: parameters shared across groups, from alpha,beta,E (default alpha,beta)")
    p.add_argument("--compute-weight", type=nonneg_float, default=0.0, metavar="P",
                   help="weight each run's loss term by (C / C_max)^P, normalised to mean 1 (default 0: equal)")
    p.add_argument("--budget-rel-tol", type=nonneg_float, default=0.0, metavar="R",
                   help="approach 2: runs whose FLOPs differ by at most R (relative) share a budget (default exact)")
    p.add_argument("--window", type=positive_int, metavar="K",
                   help="approach 2: fit each parabola to the K runs nearest the lowest loss (default all)")
    p.add_argument("--seed", type=seed, default=0, help="random seed of the bootstrap (default 0)")
    add_workers_argument(p, default=2, help="bootstrap processes (default 2)")
    p.add_argument("--out", type=output_file, metavar="FIT_JSON", help="write the fit to this JSON file (fit.json)")
    p.add_argument("--plot", type=output_file, metavar="HTML", help="write a plotly HTML report (data, fitted curves, residuals)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def _meta(args) -> dict:
    from planner.fit import runs_table_meta
    from planner.provenance import command_line

    return runs_table_meta(args.runs, n_col=args.n_col, loss_col=args.loss_col, d_col=args.d_col,
                           flops_col=args.flops_col, command=command_line(default="scaleplan fit"))


def _fmt_ci(ci: dict, key: str) -> str:
    v = ci.get(key)
    return f"  [{v[0]:.4g}, {v[1]:.4g}]" if v else ""


def run(args) -> int:
    import numpy as np

    from planner.errors import UserError
    from planner.runs import MIN_ROWS_APPROACH3, load_runs

    if args.approach == 2 and (args.holdout_top_compute or args.alpha_eq_beta or args.fixed_alpha
                               or args.fixed_beta or args.backtest_factors or args.fixed_E or args.min_compute
                               or args.compute_weight or args.select):
        raise UserError("--holdout-top-compute/--alpha-eq-beta/--fixed-*/--backtest-factors/--min-compute/"
                        "--compute-weight/--select apply to approach 3 only; drop them or use --approach 3")
    if args.approach == 2 and (args.E_prior or args.E_prior_from or args.form != "chinchilla" or args.group_by):
        raise UserError("--E-prior/--E-prior-from/--form/--group-by apply to approach 3 only; use --approach 3")
    if args.no_backtest and args.backtest_factors:
        raise UserError("--no-backtest and --backtest-factors contradict each other; give one")
    if args.plot and not str(args.plot).lower().endswith((".html", ".htm")):
        raise UserError(f"--plot writes HTML; give a path ending in .html, got {args.plot!r}")
    with np.errstate(over="ignore"):  # C = 6 N D of an absurd N overflows: _check_table says so, once
        df = load_runs(args.runs, n_col=args.n_col, loss_col=args.loss_col, d_col=args.d_col,
                       flops_col=args.flops_col, status_col=args.status_col,
                       min_rows=3 if args.approach == 2 else MIN_ROWS_APPROACH3)
    _check_table(args, df)
    n_status = int(df.attrs.get("n_dropped_status", 0))
    meta = _meta(args)
    if args.approach == 2:
        return _run_isoflop(args, df, n_status, meta)
    return _run_approach3(args, df, meta)


def _duplicated_columns(path) -> list[str]:
    """Column names that the header line of a CSV/TSV file repeats (pandas would rename the second
    ``loss`` to ``loss.1`` and fit the first silently); [] for other files."""
    import csv
    from pathlib import Path

    path = Path(path)
    ext = path.suffix.lower()
    if ext not in (".csv", ".tsv", ".txt") or not path.is_file():
        return []
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        header = next(csv.reader([f.readline(1 << 20)], delimiter="\t" if ext == ".tsv" else ","), [])
    names = [h.strip() for h in header]
    return sorted({n for n in names if n and names.count(n) > 1})


def _check_table(args, df) -> None:
    """UserError when a column the fit reads is named twice in the header, or when N or D lies
    beyond physical sense (N, D >= 1; N <= MAX_PARAMS, D <= MAX_TOKENS: planner/limits.py)."""
    from planner.errors import UserError

    if isinstance(args.runs, str):
        used = {c for c in (args.n_col, args.loss_col, args.d_col, args.flops_col, args.status_col) if c}
        dup = [c for c in _duplicated_columns(args.runs) if c in used]
        if dup:
            raise UserError(f"{args.runs}: column(s) {dup} appear more than once in the header, so which one to fit "
                            "is ambiguous; rename or remove the duplicates")
    for col, name, hi, flag in (("N", "parameters N", MAX_PARAMS, "--n-col"),
                                ("D", "tokens D", MAX_TOKENS, "--d-col/--flops-col")):
        v = df[col].to_numpy(dtype=float)
        bad = (v < 1) | (v > hi)
        if bad.any():
            raise UserError(f"{args.runs}: {name} ({flag}) must lie between 1 and {hi:.0e} (planner/limits.py), got "
                            f"{v[bad][0]:.4g} in {int(bad.sum())} row(s); fix or remove those rows")


def _run_approach3(args, df, meta: dict) -> int:
    from planner.backtest import DEFAULT_FACTORS, parse_factors
    from planner.fit import ChinchillaFitter, fit_runs
    from planner.io import atomic_write, write_json

    factors = () if args.no_backtest else parse_factors(args.backtest_factors) if args.backtest_factors \
        else DEFAULT_FACTORS

    fitter = ChinchillaFitter(delta=args.delta, grid=args.grid, fix_alpha_eq_beta=args.alpha_eq_beta,
                              fixed_alpha=args.fixed_alpha, fixed_beta=args.fixed_beta,
                              drop_top_loss=args.drop_top_loss, min_tokens_per_param=args.min_tokens_per_param,
                              bootstrap=args.bootstrap, seed=args.seed, n_jobs=args.workers,
                              holdout_top_compute=args.holdout_top_compute, progress=True,
                              min_compute=args.min_compute, compute_weight=args.compute_weight, fixed_E=args.fixed_E,
                              E_prior=_e_prior(args))
    fitter, df = _wrap_fitter(args, fitter, df)
    result = fit_runs(fitter, df, meta, backtest_factors=factors)
    skipped_backtest = result.backtest if result.backtest is not None and not result.backtest.predictions() else None
    if skipped_backtest is not None:  # no factor left enough runs on both sides: said, not stored
        result.backtest = None
    if result.holdout is not None:
        result.holdout.n_col, result.holdout.d_col, result.holdout.loss_col = args.n_col, args.d_col, args.loss_col
    if args.budget:  # the loss interval is a prediction interval (where a measured run should land)
        result.at_budget = fitter.law_.optimal(args.budget, interval="prediction")
    payload = result.to_dict()
    if args.out:
        write_json(args.out, payload)
    if args.plot:
        from planner.fit_plots import fit_report

        atomic_write(args.plot, fit_report(df[fitter.kept_mask_], result))
    printed = {k: v for k, v in payload.items() if k != "bootstrap"}
    printed["bootstrap"] = {"n": payload["bootstrap"]["n"], "converged_frac": payload["bootstrap"]["converged_frac"]}
    if printed.get("holdout"):
        printed["holdout"] = {k: v for k, v in printed["holdout"].items() if k != "rows"}
    if result.backtest is not None:
        printed["backtest"] = result.backtest.to_dict(rows=False)
    emit(args, printed, "\n".join(_approach3_lines(args, result, skipped_backtest)))
    return 0


def _e_prior(args):
    """The EPrior of --E-prior / --E-prior-from (not both), or None."""
    from planner.errors import UserError
    from planner.fit_prior import e_prior_from, parse_e_prior

    if args.E_prior and args.E_prior_from:
        raise UserError("give --E-prior MEAN,SD or --E-prior-from FIT_JSON|LAW, not both")
    if args.E_prior:
        return parse_e_prior(args.E_prior)
    return e_prior_from(args.E_prior_from) if args.E_prior_from else None


def _wrap_fitter(args, fitter, df):
    """--form, --group-by and --select around the base fitter; with --group-by, df becomes the target group."""
    from planner.errors import UserError

    if sum(bool(x) for x in (args.form != "chinchilla", args.group_by, args.select)) > 1:
        raise UserError("--form, --group-by and --select are separate choices; give one (--select tries the forms)")
    if args.form != "chinchilla":
        from planner.fit_form_fitter import FormFitter

        if args.budget:
            raise UserError(f"--budget needs a Chinchilla-form law (closed-form allocation); the {args.form} form "
                            "has none here: drop --budget or use --form chinchilla")
        return FormFitter(form=args.form, **{k: getattr(fitter, k) for k in fitter.SETTINGS}), df
    if args.group_by:
        return _group_fitter(args, fitter, df)
    if args.select:
        from planner.fit_select import SelectingFitter

        return SelectingFitter(fitter), df
    return fitter, df


def _group_fitter(args, fitter, df):
    from planner.errors import UserError
    from planner.fit_groups import GroupFitter, parse_share

    share = parse_share(args.share)
    if args.group_by not in df.columns:
        raise UserError(f"--group-by {args.group_by!r} is not a column of {args.runs}; columns: {list(df.columns)}")
    labels = df[args.group_by].astype(str)
    counts = labels.value_counts()
    if len(counts) < 2:
        raise UserError(f"--group-by {args.group_by}: only one group ({counts.index[0]!r}); a joint fit needs two or more")
    target = str(args.group) if args.group is not None else str(sorted(counts.index, key=lambda g: (-counts[g], g))[0])
    if target not in counts.index:
        raise UserError(f"--group {target!r} is not a value of {args.group_by}; values: {sorted(counts.index)}")
    aux = {g: (df.loc[labels == g, "N"], df.loc[labels == g, "D"], df.loc[labels == g, "loss"])
           for g in sorted(counts.index) if g != target}
    sub = df[labels == target].reset_index(drop=True)
    sub.attrs.update(df.attrs)
    return GroupFitter(fitter, aux, share, target), sub


def _approach3_lines(args, result, skipped_backtest=None) -> list[str]:
    law, ci = result.law, result.ci
    lines = [f"Approach 3 fit of {args.runs}: {result.n_rows} rows ({result.n_dropped} dropped), loss in nats",
             "  L(N, D) = E + A / N^alpha + B / D^beta",
             *(f"  {k:<5} = {getattr(law, k):.4g}{_fmt_ci(ci, k)}" for k in ("E", "A", "B", "alpha", "beta")),
             f"  objective {result.objective:.6g}, grad norm {result.grad_norm:.2e}, converged: {result.converged} "
             f"({result.agreement['n_starts_at_best']} of {result.agreement['n_starts']} starts reach the optimum)"]
    a = result.at_budget
    if a is not None:
        lines.append(f"  at C = {a.C:.3g}: N* = {a.N:.3g}{_fmt_ci(a.ci, 'N')}, D* = {a.D:.3g}{_fmt_ci(a.ci, 'D')}, "
                     f"tokens/param {a.tokens_per_param:.3g}, loss {a.loss:.4g}{_fmt_ci(a.ci, 'loss')}"
                     + ("  (95%: N*, D* over the bootstrap laws; loss a prediction interval)" if a.ci else ""))
    h = result.holdout
    if h is not None:
        lines.append(f"  holdout: {h.n_heldout} highest-compute rows, max rel error {h.max_abs_rel_error:.2%}, mean "
                     f"{h.mean_abs_rel_error:.2%}, {sum(r.inside_interval for r in h.rows)}/{h.n_heldout} inside the "
                     "95% prediction interval")
    if result.meta.get("form"):
        f = result.meta["form"]
        lines.append(f"  form {f['form']} ({f['source']}): " + ", ".join(f"{k} = {v:.4g}" for k, v in f["params"].items())
                     + f"; converged: {f['converged']}")
    if result.meta.get("groups"):
        lines.append(f"  joint fit over {args.group_by} sharing {','.join(result.meta['share'])}; law above = group "
                     f"{result.meta['target_group']!r}; per group: " + "; ".join(
                         f"{g}: E {v['E']:.4g} alpha {v['alpha']:.4g} beta {v['beta']:.4g} ({v['n_rows']} rows)"
                         for g, v in result.meta["groups"].items()))
    sel = result.meta.get("select")
    if sel:
        scores = ", ".join(f"{k} {_pct(v) if v != float('inf') else 'n/a'}" for k, v in sel["scores"].items())
        lines.append(f"  selected by inner backtest: {sel['chosen']} (mean |err| of inner predictions: {scores})")
    lines += _backtest_lines(result.backtest or skipped_backtest)
    lines += [f"  warning: {w}" for w in result.warnings]
    if args.out:
        lines.append(f"wrote {args.out}")
    if args.plot:
        lines.append(f"wrote {args.plot}")
    return lines


def _pct(x: float) -> str:
    """A relative error as a percentage; a runaway one (>= 1000 %) in scientific notation."""
    return f"{x:.2%}" if abs(x) < 10 else f"{100 * x:.2e}%"


def _backtest_lines(bt) -> list[str]:
    """The backtest as a short table: per k, then |error| and coverage per extrapolation factor."""
    if bt is None:
        return []
    lines = ["  backtest: fit on compute <= C_max/k, predict the rest (95% prediction intervals)",
             f"    {'k':>5} {'fitted':>6} {'held':>5} {'max|err|':>9} {'mean|err|':>9} {'inside':>7} {'reach':>7}"]
    for r in bt.split_table():
        if "skipped" in r:
            lines.append(f"    {r['k']:>5g} {r['fitted']:>6} {r['held_out']:>5}  skipped: {r['skipped']}")
        else:
            lines.append(f"    {r['k']:>5g} {r['fitted']:>6} {r['held_out']:>5} {_pct(r['max_abs_rel_error']):>9} "
                         f"{_pct(r['mean_abs_rel_error']):>9} {r['inside']:>3}/{r['held_out']:<3} {r['reach']:>6.3g}x"
                         + ("" if r["converged"] else "  (refit not converged)")
                         + (f"  [selected: {r['selected']}]" if r.get("selected") else ""))
    curve = bt.curve()
    if curve:
        lines.append("    error vs extrapolation factor (run compute / largest fitted compute), all splits:")
        lines += [f"      {b.label():>10}: {b.n:>4} predictions, max |err| {_pct(b.max_abs_rel_error)}, mean "
                  f"{_pct(b.mean_abs_rel_error)}, {b.frac_inside_interval:.0%} inside" for b in curve]
    goal = bt.goal()
    for key, g in goal.items():
        if isinstance(g, dict):
            lines.append(f"    goal at >= {key} (|err| <= {goal['max_abs_rel_error']:.1%}, >= "
                         f"{goal['frac_inside_interval']:.0%} inside): max |err| {_pct(g['max_abs_rel_error'])}, "
                         f"{g['frac_inside_interval']:.0%} inside over {g['n']}: {'met' if g['met'] else 'missed'}")
    return lines


def _run_isoflop(args, df, n_status: int, meta: dict) -> int:
    from planner.io import atomic_write, write_json
    from planner.isoflop import fit_isoflop

    res = fit_isoflop(df["N"].to_numpy(), df["loss"].to_numpy(), df["C"].to_numpy(), rel_tol=args.budget_rel_tol,
                      window=args.window, bootstrap=args.bootstrap or 200, seed=args.seed)
    payload = {**res.to_dict(), "n_rows": int(len(df)), "n_dropped": n_status,
               "warnings": [f"budget C={o.C:.3g} refused: {o.refused}" for o in res.optima if o.refused],
               "meta": {**meta, "window": args.window, "budget_rel_tol": args.budget_rel_tol}}
    if args.out:
        write_json(args.out, payload)
    if args.plot:
        from planner.fit_plots import fig_isoflop, fit_report_html

        fig = fig_isoflop(res, df["N"].to_numpy(), df["loss"].to_numpy(), df["C"].to_numpy())
        atomic_write(args.plot, fit_report_html([fig], f"scaleplan {meta['scaleplan_version']}; "
                                                       f"command: {meta['command']}"))
    ci = payload["ci"]
    lines = [f"Approach 2 (isoFLOP) fit of {args.runs}: {res.to_dict()['n_used']} of {len(res.optima)} budgets used",
             f"  N* ∝ C^a: a = {res.a:.4f}{_fmt_ci(ci, 'a')} (OLS se {res.a_se:.3g})",
             f"  D* ∝ C^b: b = {res.b:.4f}{_fmt_ci(ci, 'b')} (OLS se {res.b_se:.3g})"]
    for o in res.optima:
        lines.append(f"  C={o.C:.3g}: " + (f"N*={o.N_opt:.3g} D*={o.D_opt:.3g} loss*={o.loss_opt:.4f}"
                                           if o.refused is None else f"refused: {o.refused}"))
    if args.out:
        lines.append(f"wrote {args.out}")
    if args.plot:
        lines.append(f"wrote {args.plot}")
    emit(args, payload, "\n".join(lines))
    return 0
