"""Dashboard-only plotly figures that re-plot stored numbers (no model math beyond evaluating a law).

Figures the library offers (planner.fit_plots, proxy_train.sweep_export, proxy_train.coord_check,
proxy_train.transfer) are used as they are; this module covers the plan's memory bar, the plan's
choices (near-optimal band, law sensitivity, layout alternatives) and the law figures of the
Scaling-fit page.
"""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

MEMORY_COLORS = {"weights": "#4C78A8", "gradients": "#F58518", "grads": "#F58518", "optimizer": "#54A24B",
                 "activations": "#E45756", "overhead": "#9D9D9D"}


def memory_bar(components: dict[str, float], gpu_bytes: float | None, gpu_name: str = "GPU") -> go.Figure:
    """One stacked bar of per-GPU memory (GB = 1e9 bytes) with the GPU's capacity as a dashed line."""
    fig = go.Figure()
    for name, nbytes in components.items():
        fig.add_trace(go.Bar(name=name, x=["per GPU"], y=[nbytes / 1e9], marker_color=MEMORY_COLORS.get(name),
                             hovertemplate=f"{name}: %{{y:.2f}} GB<extra></extra>"))
    if gpu_bytes:
        fig.add_hline(y=gpu_bytes / 1e9, line_dash="dash", line_color="black",
                      annotation_text=f"{gpu_name}: {gpu_bytes / 2**30:.0f} GiB = {gpu_bytes / 1e9:.1f} GB", annotation_position="top left")
    total = sum(components.values()) / 1e9
    top = max(total, (gpu_bytes or 0) / 1e9) * 1.15
    fig.update_layout(barmode="stack", title=f"Memory per GPU: {total:.1f} GB", yaxis_title="GB (1e9 bytes)",
                      yaxis_range=[0, top], height=380, margin=dict(t=50, b=20), legend_title_text="component")
    return fig


def runs_figure(runs: pd.DataFrame) -> go.Figure:
    """Runs in the (N, D) plane, coloured by final loss (nats), both axes log."""
    import plotly.express as px

    fig = px.scatter(runs, x="N", y="D", color="loss", log_x=True, log_y=True, color_continuous_scale="Viridis_r",
                     hover_data={"C": ":.3g", "loss": ":.4f"},
                     labels={"N": "parameters N", "D": "training tokens D", "loss": "loss (nats)", "C": "FLOPs"},
                     title="Training runs: parameters vs tokens, coloured by final loss")
    return fig


def isoflop_figure(runs: pd.DataFrame | None, law, budgets: list[float], overlays: dict | None = None) -> go.Figure:
    """Loss vs N along fixed budgets C (D = C / 6N, the runs table's convention), the law's curves,
    its compute-optimal points, and the runs themselves; ``overlays`` adds other laws' optima."""
    import numpy as np

    fig = go.Figure()
    palette = ["#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#FF9DA6", "#9D755D"]
    for i, C in enumerate(budgets):
        col = palette[i % len(palette)]
        opt = law.optimal(C, interval=None)
        N = np.logspace(np.log10(opt.N) - 1.2, np.log10(opt.N) + 1.2, 80)
        fig.add_trace(go.Scatter(x=N, y=law.predict(N, C / (6.0 * N)), mode="lines", line_color=col,
                                 name=f"C = {C:.1e}", legendgroup=f"c{i}"))
        fig.add_trace(go.Scatter(x=[opt.N], y=[opt.loss], mode="markers", marker=dict(color=col, size=12, symbol="star"),
                                 name=f"optimum at {C:.1e}", legendgroup=f"c{i}", showlegend=False,
                                 hovertemplate="N* %{x:.3s}<br>loss %{y:.4f} nats<extra></extra>"))
    for j, (name, other) in enumerate((overlays or {}).items()):
        pts = [other.optimal(C, interval=None) for C in budgets]
        fig.add_trace(go.Scatter(x=[p.N for p in pts], y=[law.predict(p.N, p.D) for p in pts], mode="markers",
                                 marker=dict(symbol="x", size=10, color=palette[(j + 3) % len(palette)]),
                                 name=f"{name} N* (loss under this law)"))
    if runs is not None and len(runs):
        fig.add_trace(go.Scatter(x=runs["N"], y=runs["loss"], mode="markers", name="runs",
                                 marker=dict(color="rgba(0,0,0,0.45)", size=6),
                                 hovertemplate="N %{x:.3s}<br>loss %{y:.4f}<extra>run</extra>"))
    fig.update_xaxes(type="log", title="parameters N")
    fig.update_yaxes(title="loss (nats/token)")
    fig.update_layout(title=f"IsoFLOP curves and compute-optimal points of {law.name or 'the law'}", height=480)
    return fig


def frontier_figure(laws: dict, c_min: float = 1e18, c_max: float = 1e26) -> go.Figure:
    """Compute-optimal N*(C) and D*(C) of several laws (log-log), the fitted one first."""
    import numpy as np
    from plotly.subplots import make_subplots

    Cs = np.logspace(np.log10(c_min), np.log10(c_max), 40)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("optimal parameters N*", "optimal tokens D*"))
    for i, (name, law) in enumerate(laws.items()):
        pts = [law.optimal(float(C), interval=None) for C in Cs]
        dash = "solid" if i == 0 else "dot"
        fig.add_trace(go.Scatter(x=Cs, y=[p.N for p in pts], name=name, legendgroup=name, line_dash=dash), 1, 1)
        fig.add_trace(go.Scatter(x=Cs, y=[p.D for p in pts], name=name, legendgroup=name, line_dash=dash,
                                 showlegend=False), 1, 2)
    fig.update_xaxes(type="log", title="compute C (FLOPs)")
    fig.update_yaxes(type="log")
    fig.update_yaxes(title="parameters", row=1, col=1)
    fig.update_yaxes(title="tokens", row=1, col=2)
    fig.update_layout(title="Compute-optimal frontier: this law vs published laws", height=420)
    return fig


# ------------------------------------------------------------------ the plan's choices
CHOSEN_COLOR, BASELINE_COLOR, OTHER_COLOR = "#54A24B", "#F58518", "#9D9D9D"


def _option_hover(o) -> list[str]:
    return [f"{o.n_layers} layers x d_model {o.d_model}, ffn {o.d_ffn}, heads {o.n_heads}/{o.n_kv_heads} kv",
            o.layout, f"{o.mfu:.1%}", f"{o.days:.2f}", f"{o.tokens:.3g}", f"{o.penalty:+.3%}"]


_OPTION_HOVER = ("N %{x:.4s}, loss %{y:.4f} nats (%{customdata[5]} vs L*)<br>%{customdata[0]}<br>"
                 "%{customdata[1]}<br>MFU %{customdata[2]}, %{customdata[3]} days, %{customdata[4]} tokens")


def band_figure(plan, law=None) -> go.Figure:
    """Loss vs N along the budget's iso-FLOP line (D = C / 6N) under the plan's ``law``, the
    near-optimal band shaded, and every option of ``plan.choice`` as a marker (its loss is the law
    at the option's own tokens); the chosen option and the baseline (the compute-optimal shape)
    are separate traces named ``chosen`` and ``baseline``. ``law`` None: no curve."""
    import numpy as np

    ch, a = plan.choice, plan.allocation
    fig = go.Figure()
    xs = [o.total_params for o in ch.options] + list(ch.band)
    lo, hi = min(xs) / 1.6, max(xs) * 1.6
    if law is not None and a.C:
        N = np.geomspace(lo, hi, 120)
        fig.add_trace(go.Scatter(x=N, y=law.predict(N, a.C / (6.0 * N)), mode="lines", line_color="#4C78A8",
                                 name=f"{law.name or a.law}: loss at C = {a.C:.2e} (D = C/6N)",
                                 hovertemplate="N %{x:.4s}<br>loss %{y:.4f} nats<extra></extra>"))
    fig.add_vrect(x0=ch.band[0], x1=ch.band[1], fillcolor=CHOSEN_COLOR, opacity=0.12, line_width=0,
                  annotation_text=f"band: within {ch.tolerance:.2%} of L*", annotation_position="top left")
    if a.loss is not None:
        fig.add_hline(y=a.loss * (1 + ch.tolerance), line_dash="dot", line_color="#666666",
                      annotation_text=f"L* + {ch.tolerance:.2%}", annotation_position="bottom right")
        if a.N:
            fig.add_trace(go.Scatter(x=[a.N], y=[a.loss], mode="markers", name="N* (law optimum)",
                                     marker=dict(symbol="x", size=11, color="#4C78A8"),
                                     hovertemplate="N* %{x:.4s}<br>L* %{y:.4f} nats<extra></extra>"))
    groups = (("other options", lambda o: not (o.chosen or o.baseline), OTHER_COLOR, "circle", 10),
              ("baseline", lambda o: o.baseline, BASELINE_COLOR, "diamond", 14),
              ("chosen", lambda o: o.chosen, CHOSEN_COLOR, "star", 18))
    for name, pick, color, symbol, size in groups:
        opts = [o for o in ch.options if pick(o)]
        if opts:
            fig.add_trace(go.Scatter(x=[o.total_params for o in opts], y=[o.loss for o in opts], mode="markers",
                                     name=name, marker=dict(symbol=symbol, size=size, color=color,
                                                            line=dict(width=1, color="black")),
                                     customdata=[_option_hover(o) for o in opts],
                                     hovertemplate=_OPTION_HOVER + f"<extra>{name}</extra>"))
    fig.update_xaxes(type="log", title="total parameters N", range=[np.log10(lo), np.log10(hi)])
    fig.update_yaxes(title="predicted loss (nats/token)")
    fig.update_layout(title=f"Near-optimal band at {a.C or plan.budget.flops:.2e} FLOPs: "
                            f"{len(ch.options)} options, {ch.objective} wins", height=440,
                      margin=dict(t=60, b=20), legend=dict(orientation="h", y=-0.18))
    return fig


def sensitivity_figure(plan) -> go.Figure:
    """Each law in ``plan.sensitivity``: its N* for the budget (tokens/param on the bar) against
    the plan's N (a dashed line), and the loss penalty of the plan's (N, D) under that law."""
    from plotly.subplots import make_subplots

    views = plan.sensitivity
    laws = [v.law for v in views]
    own = plan.allocation.law
    colors = [CHOSEN_COLOR if v.law == own else "#4C78A8" for v in views]
    n = plan.shape.total_params
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=(f"N* (tokens/param); dashed: this plan's {n / 1e9:.3g}B",
                                        "loss penalty of this plan's (N, D)"))
    fig.add_trace(go.Bar(x=[v.N for v in views], y=laws, orientation="h", name="N*", marker_color=colors,
                         text=[f"{v.tokens_per_param:.0f} tok/param" for v in views], textposition="inside",
                         customdata=[[v.D, v.loss] for v in views],
                         hovertemplate="%{y}: N* %{x:.4s}, D %{customdata[0]:.4s}<br>"
                                       "loss at its optimum %{customdata[1]:.4f} nats<extra></extra>"), 1, 1)
    fig.add_vline(x=n, line_dash="dash", line_color="black", row=1, col=1)
    fig.add_trace(go.Bar(x=[100.0 * v.penalty for v in views], y=laws, orientation="h", name="penalty",
                         marker_color=colors, text=[f"{v.penalty:+.2%}" for v in views], textposition="auto",
                         hovertemplate="%{y}: +%{x:.3f}% loss vs its optimum at the same 6ND<extra></extra>"), 1, 2)
    fig.update_xaxes(title="parameters", range=[0, 1.15 * max([n] + [v.N for v in views])], row=1, col=1)
    fig.update_xaxes(title="loss penalty (%)", rangemode="tozero", row=1, col=2)
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True)
    fig.update_layout(title="Law sensitivity: what each published law says about this budget", showlegend=False,
                      height=120 + 45 * len(views), margin=dict(t=80, b=20))
    return fig


def layout_label(i: int, layout: str) -> str:
    """'#1 plan: TP2 PP1 CP1 DP8 mbs 2' from a Layout.describe() text (its first five fields)."""
    head = " ".join(p.strip() for p in layout.split(",")[:5])
    return f"#{i + 1}{' plan' if i == 0 else ''}: {head}"


def layout_figure(options, capacity_gib: float, margin: float, gpu_name: str = "GPU") -> go.Figure:
    """The searched layouts (``plan.layout_options``, the plan's first): days (MFU on the bar) and
    memory per GPU against the GPU's capacity and the plan's memory margin."""
    from plotly.subplots import make_subplots

    labels = [layout_label(i, o.layout) for i, o in enumerate(options)]
    colors = [CHOSEN_COLOR if i == 0 else "#4C78A8" for i in range(len(options))]
    hover = [[o.layout, o.why, f"{o.mfu:.1%}"] for o in options]
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=("training days (MFU on the bar)", "memory per GPU (GiB)"))
    fig.add_trace(go.Bar(x=[o.days for o in options], y=labels, orientation="h", name="days", marker_color=colors,
                         text=[f"MFU {o.mfu:.1%}" for o in options], textposition="inside", customdata=hover,
                         hovertemplate="%{customdata[0]}<br>%{x:.2f} days at MFU %{customdata[2]}<br>"
                                       "%{customdata[1]}<extra></extra>"), 1, 1)
    fig.add_trace(go.Bar(x=[o.memory_gib for o in options], y=labels, orientation="h", name="memory",
                         marker_color=colors, customdata=hover,
                         hovertemplate="%{customdata[0]}<br>%{x:.1f} GiB per GPU<extra></extra>"), 1, 2)
    fig.add_vline(x=capacity_gib, line_dash="dash", line_color="black", row=1, col=2)
    fig.add_vline(x=capacity_gib * (1 - margin), line_dash="dot", line_color="#E45756", row=1, col=2)
    fig.update_yaxes(autorange="reversed", automargin=True)
    fig.update_xaxes(automargin=True)
    fig.update_xaxes(title="days", rangemode="tozero", row=1, col=1)
    fig.update_xaxes(title="GiB", range=[0, max([capacity_gib] + [o.memory_gib for o in options]) * 1.08],
                     row=1, col=2)
    fig.update_layout(title=f"Layout alternatives for the chosen shape<br><sup>memory against the {gpu_name}'s "
                            f"{capacity_gib:.0f} GiB (dashed) and the {margin:.0%} margin (dotted)</sup>",
                      showlegend=False, height=160 + 40 * len(options), margin=dict(t=100, b=20))
    return fig
