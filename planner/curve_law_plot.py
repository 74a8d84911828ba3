"""Figure of loss-curve laws (:mod:`planner.curve_law`): observed curves vs the fitted law, one panel per size.

Input per size: a list of curves, each a dict with ``label``, ``train_s``/``train_loss`` (already
smoothed for display by the caller, who says how in ``train_note``), ``val_s``/``val_loss`` and
``law_s``/``law_loss`` (the law's validation-loss prediction on that run's own schedule); and
optionally ``predicted`` points (``s``, ``loss``, ``label``) at the end of other schedules.
Axes: updates applied (s) vs loss in nats.
"""
from __future__ import annotations

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def fig_curves(per_size: dict[str, dict], title: str = "Loss curves and the fitted curve law"):
    """One subplot per size: observed train (faint) and validation (markers) losses, law (line)."""
    from plotly.subplots import make_subplots
    import plotly.graph_objects as go

    names = list(per_size)
    cols = min(3, max(1, len(names)))
    rows = (len(names) + cols - 1) // cols
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=names)
    for k, name in enumerate(names):
        r, c = k // cols + 1, k % cols + 1
        entry = per_size[name]
        for i, cur in enumerate(entry.get("curves", [])):
            color = PALETTE[i % len(PALETTE)]
            first = k == 0 and i == 0  # one legend entry per kind of trace
            if len(cur.get("train_s", [])):
                fig.add_trace(go.Scatter(x=cur["train_s"], y=cur["train_loss"], mode="lines", opacity=0.3,
                                         line=dict(color=color, width=1), name="train loss (rolling mean)",
                                         legendgroup="train", showlegend=first), row=r, col=c)
            fig.add_trace(go.Scatter(x=cur["val_s"], y=cur["val_loss"], mode="markers", marker=dict(color=color),
                                     name="validation loss", text=[cur["label"]] * len(cur["val_s"]),
                                     legendgroup="val", showlegend=first), row=r, col=c)
            fig.add_trace(go.Scatter(x=cur["law_s"], y=cur["law_loss"], mode="lines",
                                     line=dict(color=color, dash="dash"), name="law (validation loss)",
                                     text=[cur["label"]] * len(cur["law_s"]), legendgroup="law",
                                     showlegend=first), row=r, col=c)
        pred = entry.get("predicted") or []
        if pred:
            fig.add_trace(go.Scatter(x=[p["s"] for p in pred], y=[p["loss"] for p in pred], mode="markers",
                                     marker=dict(symbol="x", size=9, color="black"), name="predicted final loss",
                                     text=[p["label"] for p in pred], showlegend=k == 0), row=r, col=c)
        fig.update_xaxes(title_text="updates (s)", type="log", row=r, col=c)
        fig.update_yaxes(title_text="loss (nats)", row=r, col=c)
    note = per_size and next(iter(per_size.values())).get("train_note", "")
    fig.update_layout(title=f"{title}<br><sup>{note}</sup>" if note else title, template="plotly_white",
                      height=360 * rows)
    return fig
