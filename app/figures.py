"""Dashboard-only plotly figures that re-plot stored numbers (no model math).

Figures the library offers (planner.fit_plots, proxy_train.sweep_export, proxy_train.coord_check,
proxy_train.transfer) are used as they are; this module covers the plan's memory bar and the law
figures of the Scaling-fit page.
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
