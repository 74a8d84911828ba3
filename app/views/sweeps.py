"""Sweeps page: browse the Optuna studies of the chosen study folder and its μTransfer check.

Reads (inside the study folder only), all through the library: the sweep studies of the folder's
Optuna journal (``proxy_train.sweep_summary``: counts, best trial, trials table and figures, the
same as ``scaleplan sweep export`` writes), hparams.yaml (``planner.hparams.HParams``) and
transfer.json (drawn by ``proxy_train.transfer.transfer_figure``).
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from app import loaders, state
from planner.errors import UserError

FIGURE_TABS = {"history": "History", "parallel": "Parallel coordinates", "importance": "Importance",
               "slice": "Slice", "lr_vs_loss": "LR vs loss per width"}

st.title("Sweeps: μP base hyperparameters")
study = st.session_state.get("study")
st.caption("Optuna studies over μP base hyperparameters tuned on small proxies; loss is validation "
           "cross-entropy in nats per token.")

if study is None:
    st.info("No study chosen. Run `scaleplan sweep --study studies/NAME ...` and pick it in the sidebar; "
            "the Plan page works without one (published laws, default hyperparameter rules).")

sweeps = {}
try:
    journal, sweeps = loaders.load_sweeps(study)
    if study is not None and journal is None:
        st.info(f"No Optuna journal in `{study.name}`.")
except UserError as e:
    st.error(str(e))

if sweeps:
    name = st.selectbox("Optuna study", sorted(sweeps), key="optuna_study")
    sweep = sweeps[name]
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Complete trials", sweep.counts.complete)
    c2.metric("Pruned", sweep.counts.pruned)
    c3.metric("Failed", sweep.counts.failed)
    c4.metric("Best val loss (nats)", f"{sweep.best.value:.4f}" if sweep.best else "n/a")
    if sweep.best:
        st.subheader(f"Best trial #{sweep.best.number}")
        st.dataframe(pd.DataFrame([{"hyperparameter": k, "value": f"{v:.4g}" if isinstance(v, float) else str(v)}
                                   for k, v in sweep.best.params.items()]), hide_index=True)
        figures, skipped = sweep.figures()
        for tab, key in zip(st.tabs(list(FIGURE_TABS.values())), FIGURE_TABS):
            with tab:
                if key in figures:
                    st.plotly_chart(figures[key], width="stretch", key=f"sweep-{name}-{key}")
                else:
                    st.info(f"{FIGURE_TABS[key]} not available for this study: {skipped.get(key, 'not drawn')}.")
    else:
        st.info("No complete trial yet.")

hp = loaders.study_file(study, *loaders.HPARAMS_FILES)
if hp is not None:
    st.subheader("Exported base hyperparameters (hparams.yaml)")
    try:
        h = loaders.load_hparams(hp)
        st.dataframe(pd.DataFrame([{"field": k, "value": str(v)} for k, v in h.to_dict().items()]),
                     hide_index=True)
    except UserError as e:
        st.error(str(e))

# ---------------------------------------------------------------------------- μTransfer check
st.header("μTransfer check: does the optimal LR stay put as width grows?")
root = st.session_state.get("studies_root")
transfer_files = []
for name in state.list_studies(root) if root else []:
    transfer_files += loaders.find_files(state.inside(root, name), "**/transfer.json")
if not transfer_files:
    st.info("No transfer.json under the studies folder. `scaleplan transfer-check --out studies/transfer` "
            "records one (μP vs SP learning-rate drift across widths).")
for path in transfer_files:
    label = path.relative_to(root).as_posix()
    try:
        loaders.load_object(path, "transfer.json")  # a list or a number: the loaders' message
        from proxy_train.transfer import read_result  # torch-free; every field checked

        data = read_result(path)
    except UserError as e:
        loaders.artefact_error(path, str(e))
        continue
    with loaders.shown_errors(path):
        st.subheader(label)
        params = data.get("params") if isinstance(data.get("params"), dict) else {}
        if params:
            cols = st.columns(len(params))
            for col, (param, res) in zip(cols, params.items()):
                drift = res.get("drift_octaves")
                col.metric(f"{'μP' if param == 'mup' else param.upper()} optimal-LR drift (octaves)",
                           f"{drift:.2f}" if isinstance(drift, (int, float)) else "n/a",
                           help=f"max − min of the optimal log2 LR over widths {res.get('widths')}")
            goals = data.get("goals") or {}
            if goals.get("mup_ok") is not None:
                ok = goals.get("mup_ok") and goals.get("sp_ok") is not False
                (st.success if ok else st.warning)(
                    f"μP drift ≤ {goals.get('mup_drift_max')} octave: {goals.get('mup_ok')}; "
                    f"SP drift ≥ {goals.get('sp_drift_min')}: {goals.get('sp_ok')}")
            try:
                from proxy_train.transfer import transfer_figure

                st.plotly_chart(transfer_figure(data), width="stretch", key=f"transfer-{label}")
            except (KeyError, TypeError, ValueError) as e:
                st.error(f"{label}: transfer.json has an unexpected layout ({type(e).__name__}: {e}); regenerate it")
        else:
            st.warning(f"{label}: no per-parameterization results in this file")
        with st.expander("transfer.json"):
            st.json(data, expanded=False)
