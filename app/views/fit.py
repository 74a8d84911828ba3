"""Scaling-fit page: runs, the fitted law L(N, D) = E + A/N^α + B/D^β, its isoFLOP curves and
compute-optimal frontier, residuals, held-out points, bootstrap CIs, and published laws overlaid.

Inputs: the chosen study's runs table and fit.json (``scaleplan fit``), or a runs CSV/Parquet the
user uploads (parsed as data by pandas, validated by planner.runs.load_runs; see app/upload.py).
Without a study the page shows the published laws only.
"""
from __future__ import annotations

import dataclasses

import pandas as pd
import streamlit as st

from app import fmt, loaders, upload
from app.figures import frontier_figure, isoflop_figure, runs_figure
from planner.errors import UserError
from planner.fit_result import FitResult
from planner.laws import PRESETS, load_law

st.title("Scaling fit: loss vs parameters and tokens")
st.caption("Chinchilla form L(N, D) = E + A/N^α + B/D^β, loss in nats per token, N parameters, "
           "D tokens, C = 6·N·D FLOPs (Hoffmann et al. 2022).")

study = st.session_state.get("study")
runs, law, fit = None, None, None

fit_path = loaders.study_file(study, *loaders.FIT_FILES)
runs_path = loaders.study_file(study, *loaders.RUNS_FILES)
if fit_path is not None:
    try:
        fit = FitResult.from_dict(loaders.load_json(fit_path), where=f"law file {fit_path}")
        law = dataclasses.replace(fit.law, name=f"{study.name} fit")
        law.optimal(1e21, interval=None)  # a law with no finite allocation (tiny exponents) is unusable here
    except UserError as e:
        st.error(str(e) if str(fit_path) in str(e) else f"{fit_path}: {e}")
        fit, law = None, None
if runs_path is not None:
    try:
        table = loaders.load_table(runs_path)
        meta = fit.meta if fit is not None else {}
        n_col = meta.get("n_col") if meta.get("n_col") in table.columns else upload.guess_column(table, upload.N_COLUMNS)
        loss_col = meta.get("loss_col") if meta.get("loss_col") in table.columns else upload.guess_column(
            table, upload.LOSS_COLUMNS)
        d_col = meta.get("d_col") if meta.get("d_col") in table.columns else None
        flops_col = meta.get("flops_col") if meta.get("flops_col") in table.columns else None
        if d_col is None and flops_col is None:
            d_col = upload.guess_column(table, upload.D_COLUMNS)
            flops_col = None if d_col else upload.guess_column(table, upload.FLOPS_COLUMNS)
        runs = upload.validate_runs(table, n_col=n_col, loss_col=loss_col, d_col=d_col, flops_col=flops_col)
    except UserError as e:
        st.error(f"runs table of study {study.name}: {e}")

with st.expander("Upload your own runs (CSV or Parquet)", expanded=study is None):
    st.caption(f"One row per training run with parameters, tokens (or FLOPs) and final loss in nats, e.g. "
               f"columns `total_params, tokens, final_val_loss`. At most {upload.MAX_UPLOAD_MB} MiB; the file is "
               "read as a table, never executed.")
    up = st.file_uploader("runs table", type=["csv", "parquet"], key="runs_upload")
    if up is not None:
        try:
            runs = upload.runs_from_upload(up.name, up.getvalue())
            st.success(f"{up.name}: {len(runs)} usable runs"
                       + (f" ({runs.attrs['n_dropped_status']} rows with status != ok dropped)"
                          if runs.attrs.get("n_dropped_status") else ""))
            law = None if study is None else law
        except UserError as e:
            st.error(f"Upload rejected: {e}")

if study is None and runs is None:
    st.info("No study chosen: showing published laws only. Pick a study in the sidebar or upload runs.")

# ------------------------------------------------------------------ the law
def fit_choice_lines(meta: dict) -> list[str]:
    """Captions for the fitting choices fit.json records: a prior on E, a joint fit across groups."""
    out = []
    prior = meta.get("E_prior")
    if isinstance(prior, dict) and {"mean", "sd"} <= set(prior):
        out.append(f"Prior on E: {prior['mean']:.4g} ± {prior['sd']:.3g} (Gaussian on log E; "
                   f"from {prior.get('source') or 'the command line'}).")
    groups = meta.get("groups")
    if isinstance(groups, dict) and groups:
        shared = ", ".join(map(str, meta.get("share") or []))
        rows = "; ".join(f"{g}: {v.get('n_rows', '?')} runs" for g, v in groups.items() if isinstance(v, dict))
        out.append(f"Joint fit across {len(groups)} data sets sharing {shared or 'nothing'}; this law is "
                   f"{meta.get('target_group', '?')}'s ({rows}).")
    return out


def fmt_pct(x) -> str:
    return "" if x is None else f"{100 * x:.2f}%"


published = {name: load_law(name) for name in PRESETS}
shown = law or published["hoffmann2022"]
if law is not None:
    st.subheader(f"Fitted law ({fit_path.relative_to(st.session_state['studies_root']).as_posix()})")
    ref = loaders.load_reference(study)
    if ref is not None:
        st.caption(f"Published runs (real scale): {ref.get('citation', '?')}; data {ref.get('url', '')}, licence "
                   f"{ref.get('licence', '?')}. Rebuilt by `{ref.get('command', 'scaleplan study import')}`.")
    sel = (fit.meta or {}).get("select")
    if isinstance(sel, dict) and sel.get("chosen"):
        st.caption(f"Fitting configuration chosen by an inner backtest on the fitted runs only: **{sel['chosen']}**.")
    for line in fit_choice_lines(fit.meta or {}):
        st.caption(line)
    ci = fit.ci
    rows = [{"parameter": k, "value": f"{getattr(law, k):.4g}",
             "95% CI": f"[{ci[k][0]:.4g}, {ci[k][1]:.4g}]" if k in ci else ""} for k in ("E", "A", "B", "alpha", "beta")]
    c1, c2 = st.columns([2, 3])
    c1.dataframe(pd.DataFrame(rows), hide_index=True)
    with c2:
        nan = float("nan")
        st.markdown(f"**{fit.n_rows if fit.n_rows is not None else '?'}** rows fitted, {fit.n_dropped} dropped; "
                    f"objective {fit.objective if fit.objective is not None else nan:.3g}; gradient norm "
                    f"{fit.grad_norm if fit.grad_norm is not None else nan:.2g}; converged: **{fit.converged}**; "
                    f"bootstrap resamples: {0 if law.samples is None else len(law.samples)}")
        for w in fit.warnings:
            st.warning(w)
        ho = fit.holdout
        if ho is not None:
            st.markdown(f"Held-out extrapolation ({ho.n_heldout} highest-compute runs): max relative error "
                        f"**{100 * ho.max_abs_rel_error:.2f}%**, mean {100 * ho.mean_abs_rel_error:.2f}%; inside the "
                        f"95% prediction interval: {sum(r.inside_interval for r in ho.rows)}/{ho.n_heldout}")
else:
    st.subheader("Published laws")
    st.dataframe(pd.DataFrame([{"law": k, "E": v.E, "A": v.A, "B": v.B, "α": v.alpha, "β": v.beta,
                                "source": v.source} for k, v in published.items()]), hide_index=True)

# ------------------------------------------------------------------ figures
if runs is not None:
    st.plotly_chart(runs_figure(runs), width="stretch")
    c_lo, c_hi = float(runs["C"].min()), float(runs["C"].max())
    budgets = sorted({float(f"{c:.1e}") for c in pd.Series(runs["C"]).quantile([0, 0.25, 0.5, 0.75, 1.0])})
else:
    c_lo, c_hi = 1e19, 1e24
    budgets = [1e19, 1e20, 1e21, 1e22, 1e23]
overlay = st.multiselect("Overlay published laws", list(published), default=["hoffmann2022", "besiroglu2024"]
                         if law is not None else [], key="overlay")
st.plotly_chart(isoflop_figure(runs, shown, budgets, {k: published[k] for k in overlay if k != shown.name}),
                width="stretch")
frontier = {shown.name or "law": shown, **{k: published[k] for k in overlay or list(published) if k != shown.name}}
st.plotly_chart(frontier_figure(frontier, min(c_lo, 1e18), max(c_hi * 1e3, 1e25)), width="stretch")

if runs is not None and law is not None:
    from planner.fit_plots import fig_residuals, fig_runs_and_law

    st.plotly_chart(fig_runs_and_law(runs, law, title=f"Loss vs compute: runs and {law.name}"), width="stretch")
    st.plotly_chart(fig_residuals(runs, law, fit.holdout if fit is not None else None,
                                  title="Residuals (held-out runs with their prediction intervals)"),
                    width="stretch")

if fit is not None and fit.backtest is not None:
    from planner.fit_plots import fig_backtest

    bt = fit.backtest
    st.subheader("Backtest: how far this fit extrapolates")
    st.caption("Refit on the runs with compute ≤ C_max/k, predict the others; extrapolation factor = a run's "
               "compute / the largest fitted compute; 95% prediction interval = bootstrap law × resampled residual.")
    st.plotly_chart(fig_backtest(bt), width="stretch")
    c1, c2 = st.columns(2)
    c1.dataframe(pd.DataFrame([{"k": r["k"], "fitted": r["fitted"], "held out": r["held_out"],
                                "max |error|": fmt_pct(r.get("max_abs_rel_error")),
                                "inside 95% PI": f"{r['inside']}/{r['held_out']}" if "inside" in r else "",
                                "reach": f"{r['reach']:.3g}x" if "reach" in r else "", "skipped": r.get("skipped", "")}
                               for r in bt.split_table()]), hide_index=True)
    c2.dataframe(pd.DataFrame([{"factor": b.label(), "predictions": b.n, "max |error|": fmt_pct(b.max_abs_rel_error),
                                "mean |error|": fmt_pct(b.mean_abs_rel_error),
                                "inside 95% PI": f"{b.frac_inside_interval:.0%}"} for b in bt.curve()]),
                 hide_index=True)
    for key, g in bt.goal().items():
        if isinstance(g, dict):
            st.markdown(f"Goal at ≥ {key} (every |error| ≤ 1.5%, ≥ 90% inside): max |error| "
                        f"{fmt_pct(g['max_abs_rel_error'])}, {g['frac_inside_interval']:.0%} inside over {g['n']} "
                        f"predictions: **{'met' if g['met'] else 'missed'}**")

if law is not None:
    C = st.number_input("Budget for the allocation table (FLOPs)", min_value=1e15, max_value=1e28,
                        value=float(f"{c_hi * 100:.0e}"), format="%.2e", key="fit_budget")
    a = law.optimal(C)
    rows = []
    for key, label, f in (("N", "N* (params)", fmt.human), ("D", "D* (tokens)", fmt.human),
                          ("tokens_per_param", "tokens per param", lambda x: f"{x:.1f}"),
                          ("loss", "loss (nats)", lambda x: f"{x:.4f}")):
        lo_hi = a.ci.get(key)
        rows.append({"quantity": label, "value": f(getattr(a, key)),
                     "95% bootstrap interval": fmt.interval(*lo_hi, f=f) if lo_hi else ""})
    st.dataframe(pd.DataFrame(rows), hide_index=True)
