"""The Plan page's multi-phase figure: learning rate against tokens over every phase.

The curve is planner.plan.phases.lr_at_tokens (the LR of the update that starts at each token, the
one function the Megatron export is tested against); each phase is a shaded band labelled with its
name, mode and batch, so a re-warmup, a reset and a decay stopped mid-way are visible. Tokens on
the x axis in billions (1e9).
"""
from __future__ import annotations

import plotly.graph_objects as go

from planner.plan.phases import Phase, lr_curve, resolve_plan_phases

_BANDS = ("#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2")


def phase_lr_figure(phases: list[Phase], title: str = "Learning rate over the phases",
                    y_title: str = "learning rate") -> go.Figure:
    """LR vs tokens (billions) with one band per phase (hover: phase, mode, tokens, LR)."""
    tokens, lr = lr_curve(phases)
    fig = go.Figure()
    for i, p in enumerate(phases):
        fig.add_vrect(x0=p.start_token / 1e9, x1=p.end_token / 1e9, fillcolor=_BANDS[i % len(_BANDS)], opacity=0.08,
                      line_width=0, annotation_text=f"{p.name} ({p.mode}, batch {p.global_batch})",
                      annotation_position="top left")
    names = [next(p.name for p in phases if p.start_token <= t < p.end_token or p is phases[-1]) for t in tokens]
    fig.add_trace(go.Scatter(x=tokens / 1e9, y=lr, mode="lines", name="LR", customdata=names,
                             hovertemplate="%{customdata}: %{x:.4g}B tokens, LR %{y:.4g}<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="tokens (billions)", yaxis_title=y_title, height=380,
                      margin=dict(t=60, b=30), showlegend=False)
    return fig


def plan_phase_figure(plan) -> go.Figure | None:
    """The figure for a plan with phases (None without): the Plan page's entry point."""
    phases = resolve_plan_phases(plan)
    if not phases:
        return None
    hp = plan.hparams
    if hp is not None and plan.training.decoupled_lr is not None:  # μP: the plan's LR is the hidden matrices'
        return phase_lr_figure(phases, y_title=f"hidden-matrix LR (embedding/readout x {hp.m_d:.3g})")
    return phase_lr_figure(phases)
