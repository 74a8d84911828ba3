"""Lazy-layers page: the per-layer attention-degeneracy diagnostic stored in proxy runs' run.json.

Reads the ``attention_diagnostic`` block that ``proxy_train.train`` writes at the end of every run
(``proxy_train.attention_diagnostic.record``; Sanyal et al., arXiv:2404.08634, §2-3) from every
``run.json`` in the chosen study (every study when none is chosen) and draws, per layer, the mean
row maximum of the attention matrices (1 = every row on one key) and their entropy effective rank
(Roy & Vetterli 2007; 1 = rank one). No math here: the numbers are the ones recorded.
"""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app import loaders, state
from planner.errors import UserError

st.title("Lazy layers: attention degeneracy per layer")
st.caption("Per layer, averaged over heads and a fixed set of validation windows: **row max** = mean over "
           "query rows of the largest attention probability (1 = each row puts all its mass on one key); "
           "**effective rank** = exp(entropy of the normalised singular values) of the attention matrix "
           "(Roy & Vetterli 2007; 1 = rank one). Rows that see fewer than 8 keys are left out. Deeper layers "
           "whose attention collapses to one column are the 'lazy layers' of Inheritune (Sanyal et al., "
           "arXiv:2404.08634), which `scaleplan train --inherit-from RUN --inherit-layers K` drops.")

METRICS = {"row_max": "row max", "effective_rank": "effective rank", "first_token_mass": "mass on first token",
           "frac_rows_concentrated": "rows with max ≥ threshold", "approx_rank": "approx. rank (90%)"}


def _diagnostic(path) -> dict | None:
    """The run's attention_diagnostic block (None when the run has none); UserError when malformed."""
    rec = loaders.load_object(path, "run.json")
    block = rec.get("attention_diagnostic")
    if block is None:
        return None
    if not isinstance(block, dict) or not isinstance(block.get("layers"), list) or not block["layers"]:
        raise UserError(f"{path}: attention_diagnostic has no per-layer list; rerun the run")
    for r in block["layers"]:
        if not isinstance(r, dict) or not all(isinstance(r.get(m), (int, float)) for m in ("layer", *METRICS)):
            raise UserError(f"{path}: attention_diagnostic layer entries need numbers {sorted(METRICS)}")
    return block


def layer_figure(blocks: dict[str, dict], metric: str, y_title: str) -> go.Figure:
    """One line per run: ``metric`` against layer index (0 = nearest the embedding)."""
    fig = go.Figure()
    for label, block in blocks.items():
        rows = block["layers"]
        fig.add_trace(go.Scatter(x=[r["layer"] for r in rows], y=[r[metric] for r in rows], mode="lines+markers",
                                 name=label))
    fig.update_layout(xaxis_title="layer", yaxis_title=y_title, height=360, margin=dict(t=30, b=40),
                      legend=dict(orientation="h", y=-0.25))
    fig.update_xaxes(dtick=1)
    return fig


root = st.session_state.get("studies_root")
study = st.session_state.get("study")
names = [study.name] if study is not None else (state.list_studies(root) if root else [])
files = []
for name in names:
    files += loaders.find_files(state.inside(root, name), "**/run.json")

blocks: dict[str, dict] = {}
for path in files:
    with loaders.shown_errors(path):
        block = _diagnostic(path)
        if block is not None:
            blocks[path.relative_to(root).parent.as_posix()] = block

if not blocks:
    st.info("No run.json with an attention diagnostic here. Every finished `scaleplan train` run records one; "
            "see studies/inheritune for the stored comparison (pick that study).")
else:
    labels = list(blocks)
    chosen = st.multiselect("Runs", labels, default=labels[:6], key="layers_runs")
    shown = {k: blocks[k] for k in chosen}
    if shown:
        c1, c2 = st.columns(2)
        c1.plotly_chart(layer_figure(shown, "row_max", "mean row max"), key="layers_row_max")
        c2.plotly_chart(layer_figure(shown, "effective_rank", "effective rank"), key="layers_eff_rank")
        table = [{"run": k, "layer": r["layer"], **{v: r[m] for m, v in METRICS.items()}}
                 for k, b in shown.items() for r in b["layers"]]
        st.dataframe(pd.DataFrame(table), hide_index=True)
        lazy = {k: b.get("lazy_layers") for k, b in shown.items() if b.get("lazy_layers")}
        st.caption("Lazy layers (row max ≥ 0.9): " + ("; ".join(f"{k}: {v}" for k, v in lazy.items())
                                                       if lazy else "none in the runs shown"))
