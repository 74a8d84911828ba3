"""Sweeps page: browse the Optuna studies of the chosen study folder and its μTransfer check.

Reads (inside the study folder only), all through the library: a ladder work queue's status
(``proxy_train.ladder_queue_results.queue_status``: tasks done / running with worker host / failed /
queued, from the journal file in the folder or the storage URL recorded in study.yaml), the sweep
studies of the folder's
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
    if study is not None:  # the ladder queue's study is shown in its own section below
        from proxy_train.ladder_queue import queue_name

        sweeps = {k: v for k, v in sweeps.items() if k != queue_name(study)}
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


# ---------------------------------------------------------------------------- ladder work queue
def _ladder_queue_url(folder) -> str | None:
    """The storage URL of the folder's ladder queue (`scaleplan ladder --storage URL --enqueue`):
    study.yaml's ``ladder_queue.storage`` (a masked password is taken from $SCALEPLAN_SWEEP_STORAGE),
    else the folder's journal file when it holds the queue study; None without a queue."""
    import os

    from planner.io import read_yaml
    from proxy_train.sweep_storage import JOURNAL_NAME, STORAGE_ENV, journal_url

    path = folder / "study.yaml"
    rec = read_yaml(path) if path.is_file() else None
    rec = rec.get("ladder_queue") if isinstance(rec, dict) else None
    url = rec.get("storage") if isinstance(rec, dict) else None
    if isinstance(url, str) and url and not url.startswith("journal:"):
        if "***" in url:
            url = os.environ.get(STORAGE_ENV)
            if not url:
                raise UserError(f"the ladder queue's storage needs a password: set {STORAGE_ENV} before "
                                "`scaleplan app` to see its status")
        return url
    return journal_url(folder) if (folder / JOURNAL_NAME).is_file() else None


def _queue_rows(status: dict) -> list[dict]:
    rows = [{"state": "done", "task": d["task"], "trial": d["trial"], "worker": "",
             "detail": f"loss {d['value']:.4f}, {d['points']} point(s)" if d.get("value") is not None else ""}
            for d in status["done"]]
    rows += [{"state": "running", "task": r["task"], "trial": r["trial"], "worker": r.get("worker") or r.get("host")
              or "", "detail": f"since {r.get('started')}"} for r in status["running"]]
    rows += [{"state": "failed", "task": f["task"], "trial": f["trial"], "worker": "", "detail": f["reason"]}
             for f in status["failed"]]
    return rows + [{"state": "queued", "task": q["task"], "trial": q["trial"], "worker": "", "detail": ""}
                   for q in status["queued"]]


def _ladder_status(folder) -> dict | None:
    url = _ladder_queue_url(folder)
    if url is None:
        return None
    from proxy_train.ladder_queue_results import queue_status

    try:
        return queue_status(folder, url)
    except UserError:
        if url.startswith("journal:"):
            return None  # the folder's journal holds sweeps only
        raise


if study is not None:
    try:
        status = _ladder_status(study)
    except UserError as e:
        st.error(f"Ladder queue: {e}")
        status = None
    if status is not None:
        st.header("Ladder work queue")
        st.caption(f"Optuna study {status['queue']} in {status['storage']}: one task per size (WSD stable "
                   "phase and its branches) or per point; `scaleplan ladder --study DIR --status` prints the same.")
        c = status["counts"]
        for col, (label, key) in zip(st.columns(4), (("Done", "done"), ("Running", "running"),
                                                     ("Failed", "failed"), ("Queued", "queued"))):
            col.metric(f"Ladder tasks {label.lower()}", c[key])
        if c["retried"]:
            st.caption(f"{c['retried']} task(s) were retried after their worker stopped.")
        st.dataframe(pd.DataFrame(_queue_rows(status)), hide_index=True)

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
