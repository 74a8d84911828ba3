"""Sweeps page: browse the Optuna studies of the chosen study folder and its μTransfer check.

Reads (inside the study folder only): the Optuna journal file, trials.csv/parquet, hparams.yaml,
transfer.json. Figures come from ``optuna.visualization`` and from the sweep library
(``proxy_train.sweep.lr_loss_figure``, ``proxy_train.transfer.transfer_figure``; both torch-free).
"""
from __future__ import annotations

import pandas as pd
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
        st.dataframe(pd.DataFrame([{"hyperparameter": k, "value": f"{v:.4g}" if isinstance(v, float) else str(v)}
                                   for k, v in best.params.items()]), hide_index=True)
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
            from proxy_train.sweep import lr_loss_figure

            df = ost.trials_dataframe(attrs=("number", "value", "params", "user_attrs", "state"))
            df = df.rename(columns=lambda c: c.removeprefix("params_").removeprefix("user_attrs_"))
            df = df.loc[:, ~df.columns.duplicated()]
            if "width" not in df.columns or not ({"lr", "log2_lr"} & set(df.columns)):
                st.info("This study has no learning-rate or width parameter to plot.")
            else:
                st.plotly_chart(lr_loss_figure(df), width="stretch")
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
