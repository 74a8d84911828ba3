"""Coordinate-check page: the stored coord-check results of the studies, with pass/fail.

Reads every ``coord_check.json`` under the studies root (written by ``scaleplan coord-check``) with
the library's schema-checked reader (``proxy_train.coord_check.read_result``: a damaged file is one
error box naming the file and field) and draws the library's figures from it
(``proxy_train.coord_check.figure``: mean |activation| vs width per step; ``slopes_figure``: the
fitted slopes against the library's tolerance). Pass/fail and the criterion are the ones recorded
in the file (the library decides).
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from app import loaders, state
from planner.errors import UserError
from proxy_train.coord_check import figure, read_result, slopes_figure  # torch-free

st.title("Coordinate check: are activations width-stable?")
st.caption("Under μP the mean |activation| of every module stays flat as width grows (slope ≈ 0 per "
           "width doubling); under standard parameterization (SP) some blow up. `scaleplan coord-check` "
           "records the result; μP should pass and SP fail.")


def _load(path) -> dict:
    """The file as a JSON object (loaders' message for a list or a number), then every field checked
    by the library's reader (``proxy_train.coord_check.read_result``)."""
    loaders.load_object(path, "coord_check.json")
    return read_result(path)


root = st.session_state.get("studies_root")
files = []
for name in state.list_studies(root) if root else []:
    files += loaders.find_files(state.inside(root, name), "**/coord_check*.json")
files = [f for f in files if not f.name.endswith((".fig.json", "_fig.json"))]

if not files:
    st.info("No coord_check.json under the studies folder. Run `scaleplan coord-check --param mup --out "
            "studies/NAME/coord_mup` (and `--param sp`) to record one.")

summary = []
for path in files:
    try:
        data = _load(path)
    except UserError as e:
        loaders.artefact_error(path, str(e))
        continue
    with loaders.shown_errors(path):
        label = path.relative_to(root).parent.as_posix()
        passed = data.get("passed")
        param = data.get("param") or "?"
        summary.append({"result": label, "parameterization": param,
                        "passed": "PASS" if passed else ("FAIL" if passed is not None else "?"),
                        "criterion": data.get("criterion", "")})

if summary:
    st.dataframe(pd.DataFrame(summary), hide_index=True)

for path in files:
    try:
        data = _load(path)
    except UserError:
        continue
    with loaders.shown_errors(path):
        label = path.relative_to(root).parent.as_posix()
        passed = data.get("passed")
        param = str(data.get("param") or "").upper()
        head = f"{label} ({param})" if param else label
        if passed:
            st.success(f"{head}: PASS")
        elif passed is not None:
            st.error(f"{head}: FAIL")
        else:
            st.warning(f"{head}: no pass/fail recorded")
        worst = data.get("worst") or {}
        if worst:
            st.caption(f"worst module: {worst.get('module') or '<logits>'} at step t = {worst.get('t')}, slope "
                       f"{worst.get('slope', float('nan')):+.2f} per width doubling; {data.get('n_failing', 0)} "
                       f"(module, step) pairs over the limit; widths {data.get('widths')}")
        c1, c2 = st.columns([3, 2])
        if isinstance(data.get("l1"), list) and data["l1"]:
            try:
                c1.plotly_chart(figure(data), width="stretch", key=f"coord-l1-{label}")
            except (KeyError, TypeError, ValueError) as e:
                c1.error(f"{label}: unexpected l1 records ({type(e).__name__}: {e}); regenerate the file")
        if isinstance(data.get("slopes"), dict):
            try:
                fig = slopes_figure(data)
            except (AttributeError, TypeError, ValueError) as e:
                c2.error(f"{label}: unexpected slopes ({type(e).__name__}: {e}); regenerate the file")
                fig = None
            if fig is not None:
                c2.plotly_chart(fig, width="stretch", key=f"coord-slopes-{label}")
        with st.expander(f"{label}: raw result"):
            st.json(data, expanded=False)
