"""Sweeps page: browse the Optuna studies of the chosen study folder and its μTransfer check.

Reads (inside the study folder only): the Optuna journal file, trials.csv/parquet, hparams.yaml,
transfer.json (+ transfer.fig.json when present). Figures come from ``optuna.visualization``
(plotly); the LR-vs-loss plot only re-plots trial values (no model math here).
"""
from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from app import loaders, state
from planner.errors import UserError

st.title("Sweeps: μP base hyperparameters")
study = st.session_state.get("study")
st.caption("Optuna studies over μP base hyperparameters tuned on small proxies; loss is validation "
           "cross-entropy in nats per token.")

if study is None:
    st.info("No study chosen. Run `scaleplan sweep --study studies/NAME ...` and pick it in the sidebar; "
            "the Plan page works without one (published laws, default hyperparameter rules).")

journal = loaders.find_journal(study)
studies = {}
if study is not None and journal is None:
    st.info(f"No Optuna journal in `{study.name}`.")
if journal is not None:
    try:
        studies = loaders.load_optuna_studies(journal)
    except UserError as e:
        st.error(str(e))

WIDTH_KEYS = ("width", "d_model", "params_width", "params_d_model", "user_attrs_width", "user_attrs_d_model")
LR_KEYS = ("params_lr", "params_log2_lr", "user_attrs_lr")


def _first(df: pd.DataFrame, keys) -> str | None:
    return next((k for k in keys if k in df.columns), None)


if studies:
    name = st.selectbox("Optuna study", sorted(studies), key="optuna_study")
    ost = studies[name]
    import optuna
    from optuna.trial import TrialState

    trials = ost.get_trials(deepcopy=False)
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Complete trials", len(done))
    c2.metric("Pruned", sum(t.state == TrialState.PRUNED for t in trials))
    c3.metric("Failed", sum(t.state == TrialState.FAIL for t in trials))
    c4.metric("Best val loss (nats)", f"{ost.best_value:.4f}" if done else "n/a")
    if done:
        best = ost.best_trial
        st.subheader(f"Best trial #{best.number}")
        st.dataframe(pd.DataFrame([{"hyperparameter": k, "value": v} for k, v in best.params.items()]),
                     hide_index=True)
        tabs = st.tabs(["History", "Parallel coordinates", "Importance", "Slice", "LR vs loss per width"])
        vis = optuna.visualization
        with tabs[0]:
            st.plotly_chart(vis.plot_optimization_history(ost), width="stretch")
        with tabs[1]:
            st.plotly_chart(vis.plot_parallel_coordinate(ost), width="stretch")
        with tabs[2]:
            if len(done) >= 2 and len(best.params) >= 1:
                try:
                    st.plotly_chart(vis.plot_param_importances(ost), width="stretch")
                except Exception as e:  # importance needs >= 2 distinct values per parameter
                    st.info(f"Importance not available for this study ({type(e).__name__}: {e}).")
            else:
                st.info("Importance needs at least two complete trials.")
        with tabs[3]:
            st.plotly_chart(vis.plot_slice(ost), width="stretch")
        with tabs[4]:
            df = ost.trials_dataframe(attrs=("number", "value", "params", "user_attrs", "state"))
            df = df[df["state"] == "COMPLETE"]
            lr_col, w_col = _first(df, LR_KEYS), _first(df, WIDTH_KEYS)
            if lr_col is None:
                st.info("This study has no `lr` parameter.")
            else:
                fig = px.scatter(df, x=lr_col, y="value", color=df[w_col].astype(str) if w_col else None,
                                 log_x=lr_col == "params_lr", hover_data=["number"],
                                 labels={lr_col: "base learning rate", "value": "val loss (nats/token)",
                                         "color": "width (d_model)"},
                                 title="Learning rate vs loss, one colour per proxy width")
                st.plotly_chart(fig, width="stretch")
    else:
        st.info("No complete trial yet.")

hp = state.study_file(study, *loaders.HPARAMS_FILES)
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
        data = loaders.load_json(path)
    except UserError as e:
        st.error(str(e))
        continue
    st.subheader(label)
    drift = {k: v for k, v in (data.get("drift_octaves") or data.get("drift") or {}).items()} \
        if isinstance(data.get("drift_octaves") or data.get("drift"), dict) else {}
    if drift:
        cols = st.columns(len(drift))
        for col, (param, v) in zip(cols, drift.items()):
            col.metric(f"{param.upper()} optimal-LR drift", f"{v:.2f} octaves" if isinstance(v, (int, float)) else str(v))
    figs = [p for p in (path.with_name("transfer.fig.json"), path.with_name("transfer_fig.json")) if p.is_file()]
    if figs:
        st.plotly_chart(loaders.load_figure(figs[0]), width="stretch")
    else:
        from app.figures import transfer_figure

        fig = transfer_figure(data)
        if fig is not None:
            st.plotly_chart(fig, width="stretch")
    with st.expander("transfer.json"):
        st.json(data, expanded=False)
