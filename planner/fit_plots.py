"""Plotly figures of scaling-law fits (used by `scaleplan fit --plot` and the dashboard).

Conventions: every law argument is a :class:`planner.scaling_law.ScalingLaw` (a fitter's
``law_`` or ``planner.laws.load_law``); runs tables have the columns N, D, C, loss of
:func:`planner.runs.load_runs`; loss in nats; C = 6 N D FLOPs. plotly is imported inside each
function so that importing planner stays fast. The held-out check's own figure is
:func:`planner.holdout.holdout_figure`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from planner.holdout import HoldoutReport
from planner.scaling_law import ScalingLaw


def fig_runs_and_law(df: pd.DataFrame, law: ScalingLaw, title: str = "Runs and fitted law"):
    """Loss vs compute: the runs (coloured by log10 N) and the law along each run size, plus the
    compute-optimal frontier. ``df`` has columns N, D, C, loss (planner.runs.load_runs)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=df["C"], y=df["loss"], mode="markers", name="runs",
        marker=dict(color=np.log10(df["N"]), colorscale="Viridis", size=7,
                    colorbar=dict(title="log10 N")),
        hovertemplate="N=%{customdata[0]:.3g}<br>D=%{customdata[1]:.3g}<br>C=%{x:.3g}<br>loss=%{y:.4f}",
        customdata=np.column_stack([df["N"], df["D"]])))
    Cmin, Cmax = float(df["C"].min()), float(df["C"].max())
    sizes = np.unique(df["N"].to_numpy())
    if sizes.size > 10:
        sizes = np.geomspace(sizes.min(), sizes.max(), 10)
    C = np.geomspace(Cmin / 2, Cmax * 2, 200)
    for n in sizes:
        fig.add_trace(go.Scatter(x=C, y=law.predict(n, C / (6 * n)), mode="lines", showlegend=False,
                                 line=dict(width=1, color="rgba(100,100,100,0.5)"),
                                 hovertemplate=f"law at N={n:.3g}<br>C=%{{x:.3g}}<br>loss=%{{y:.4f}}"))
    ymin = float(df["loss"].min())
    if min(law.params) > 0:  # a fit whose exponent ended <= 0 has no compute-optimal frontier
        Cf = np.geomspace(Cmin, Cmax * 100, 100)
        Nf, Df = law.optimal_frontier(Cf)
        fig.add_trace(go.Scatter(x=Cf, y=law.predict(Nf, Df), mode="lines", name="compute-optimal frontier",
                                 line=dict(color="crimson", width=2)))
        ymin = min(ymin, float(law.predict(Nf, Df).min()))
    else:
        title += " (no compute-optimal frontier: a fitted parameter is <= 0, see the fit's warnings)"
    fig.update_layout(title=title, xaxis_type="log", xaxis_title="training compute C (FLOPs)",
                      yaxis_title="loss (nats)", yaxis_range=[ymin * 0.97, float(df["loss"].max()) * 1.03],
                      template="plotly_white")
    return fig


def fig_residuals(df: pd.DataFrame, law: ScalingLaw, holdout: HoldoutReport | None = None,
                  title: str = "Fit residuals"):
    """Relative residuals (loss / prediction - 1) vs compute, with the held-out runs and their
    95 % prediction intervals when ``holdout`` is given."""
    import plotly.graph_objects as go

    pred = law.predict(df["N"], df["D"])
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=df["C"], y=df["loss"] / pred - 1, mode="markers", name="fitted runs",
                             marker=dict(color=np.log10(df["N"]), colorscale="Viridis", size=6,
                                         colorbar=dict(title="log10 N"))))
    if holdout is not None and holdout.rows:
        h = pd.DataFrame([{"N": r.N, "D": r.D, "loss": r.measured, "pred": r.predicted, "lo": r.lo, "hi": r.hi}
                          for r in holdout.rows])
        Ch = 6 * h["N"] * h["D"]
        fig.add_trace(go.Scatter(
            x=Ch, y=h["loss"] / h["pred"] - 1, mode="markers", name="held out",
            marker=dict(symbol="x", size=10, color="crimson"),
            error_y=dict(type="data", symmetric=False, array=h["hi"] / h["pred"] - h["loss"] / h["pred"],
                         arrayminus=h["loss"] / h["pred"] - h["lo"] / h["pred"])))
    fig.add_hline(y=0, line_color="gray")
    fig.update_layout(title=title, xaxis_type="log", xaxis_title="training compute C (FLOPs)",
                      yaxis_title="loss / predicted - 1", yaxis_tickformat=".1%", template="plotly_white")
    return fig


def fig_isoflop(result, N=None, L=None, C=None, title: str = "IsoFLOP profiles (Approach 2)"):
    """Left: loss vs N per budget with the fitted parabolas and vertices (if the points N, L, C
    are given); right: N*(C) of the used budgets and the fitted power law."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from planner.isoflop import group_budgets

    fig = make_subplots(rows=1, cols=2, subplot_titles=("isoFLOP profiles", "optimal N vs compute"))
    if N is not None:
        N, L, C = (np.asarray(v, dtype=float) for v in (N, L, C))
        labels, budgets = group_budgets(C, 0.0)
        for k, Cb in enumerate(budgets):
            g = labels == k
            fig.add_trace(go.Scatter(x=N[g], y=L[g], mode="markers", name=f"C={Cb:.2g}", legendgroup=str(k),
                                     marker=dict(size=5)), row=1, col=1)
    for o in result.optima:
        if o.refused is None and N is not None:
            g = np.isclose(C, o.C, rtol=1e-6)
            if g.sum() >= 3:
                u = np.log(N[g])
                c2, c1, c0 = np.polyfit(u - u.mean(), L[g], 2)
                uu = np.linspace(u.min(), u.max(), 60)
                fig.add_trace(go.Scatter(x=np.exp(uu), y=np.polyval([c2, c1, c0], uu - u.mean()), mode="lines",
                                         showlegend=False, line=dict(width=1, color="gray")), row=1, col=1)
    used = result.used
    fig.add_trace(go.Scatter(x=[o.N_opt for o in used], y=[o.loss_opt for o in used], mode="markers",
                             name="vertex", marker=dict(symbol="star", size=10, color="black")), row=1, col=1)
    Cu = np.array([o.C for o in used])
    fig.add_trace(go.Scatter(x=Cu, y=[o.N_opt for o in used], mode="markers", name="N* per budget",
                             marker=dict(size=8, color="black")), row=1, col=2)
    Cl = np.geomspace(Cu.min(), Cu.max() * 10, 50)
    fig.add_trace(go.Scatter(x=Cl, y=result.N_opt(Cl), mode="lines", name=f"N* ∝ C^{result.a:.3f}",
                             line=dict(color="crimson")), row=1, col=2)
    fig.update_xaxes(type="log", title_text="parameters N", row=1, col=1)
    fig.update_xaxes(type="log", title_text="compute C (FLOPs)", row=1, col=2)
    fig.update_yaxes(title_text="loss (nats)", row=1, col=1)
    fig.update_yaxes(type="log", title_text="N*", row=1, col=2)
    fig.update_layout(title=title, template="plotly_white")
    return fig


def fig_backtest(backtest, title: str = "Backtest: |error| vs extrapolation factor"):
    """|relative error| of every backtest prediction (:class:`planner.backtest.Backtest`) vs its
    extrapolation factor (run compute / largest fitted compute), one colour per split k, filled
    when the measured loss is inside the 95 % prediction interval; the max |error| per factor bin
    as a line and the goal (1.5 %) as a dashed line."""
    import plotly.graph_objects as go

    from planner.holdout import GOAL_MAX_ABS_REL_ERROR

    fig = go.Figure()
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
    for i, s in enumerate(x for x in backtest.splits if x.report is not None):
        for inside in (True, False):
            rows = [r for r in s.report.rows if r.inside_interval is inside]
            if not rows:
                continue
            fig.add_trace(go.Scatter(
                x=[r.compute_vs_max_fitted for r in rows], y=[abs(r.rel_error) for r in rows], mode="markers",
                name=f"k={s.factor:g}: {'inside' if inside else 'outside'} 95% PI", legendgroup=f"k{s.factor:g}",
                marker=dict(color=palette[i % len(palette)], size=8, symbol="circle" if inside else "circle-open"),
                text=[f"{r.run_id or ''} N={r.N:.3g} D={r.D:.3g}: measured {r.measured:.4f}, predicted "
                      f"{r.predicted:.4f} [{r.lo:.4f}, {r.hi:.4f}]" for r in rows],
                hovertemplate="%{text}<br>factor %{x:.3g}x, |error| %{y:.2%}<extra></extra>"))
    curve = backtest.curve()
    if curve:
        fig.add_trace(go.Scatter(
            x=[b.median_factor for b in curve], y=[b.max_abs_rel_error for b in curve], mode="lines+markers",
            name="max |error| per factor bin", line=dict(color="black"),
            text=[f"{b.label()}: {b.n} predictions, {b.frac_inside_interval:.0%} inside the 95% PI" for b in curve],
            hovertemplate="%{text}<br>max |error| %{y:.2%}<extra></extra>"))
    fig.add_hline(y=GOAL_MAX_ABS_REL_ERROR, line_dash="dash", line_color="crimson",
                  annotation_text=f"goal {GOAL_MAX_ABS_REL_ERROR:.1%}")
    rows = backtest.predictions()
    cover = f"{sum(r.inside_interval for r in rows)}/{len(rows)} inside the 95% PI" if rows else "no predictions"
    fig.update_layout(title=f"{title} ({cover})", xaxis_type="log",
                      xaxis_title="extrapolation factor: run compute / largest fitted compute",
                      yaxis_title="|predicted / measured - 1|", yaxis_tickformat=".1%", template="plotly_white")
    return fig


def fit_report_html(figs: list, header_comment: str) -> str:
    """Several figures in one self-contained HTML page, with a provenance comment in <head>."""
    parts = []
    for i, fig in enumerate(figs):
        parts.append(fig.to_html(full_html=False, include_plotlyjs=(i == 0)))
    return ("<!DOCTYPE html>\n<html><head><meta charset='utf-8'>\n<!-- " + header_comment.replace("--", "- -")
            + " -->\n<title>scaleplan fit</title></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


def fit_report(fitted_rows: pd.DataFrame, result) -> str:
    """The HTML report of an Approach-3 fit (:class:`planner.fit_result.FitResult`): the runs with the
    law's curves, the residuals (with the held-out rows when there are any) and the backtest."""
    figs = [fig_runs_and_law(fitted_rows, result.law), fig_residuals(fitted_rows, result.law, result.holdout)]
    if getattr(result, "backtest", None) is not None:
        figs.append(fig_backtest(result.backtest))
    return fit_report_html(figs, f"scaleplan {result.meta['scaleplan_version']}; command: {result.meta['command']}")


__all__ = ["fig_runs_and_law", "fig_residuals", "fig_backtest", "fig_isoflop", "fit_report_html", "fit_report"]
