"""Coordinate-check page: the stored coord-check results of the studies, with pass/fail.

Reads every ``coord_check.json`` under the studies root (written by ``scaleplan coord-check``) and,
when present next to it, the figure saved as ``coord_check.fig.json``; otherwise re-plots the
stored slopes. The pass criterion is the one recorded in the file (the library decides).
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from app import loaders, state
from app.figures import slopes_figure
from planner.errors import UserError

st.title("Coordinate check: are activations width-stable?")
st.caption("Under μP the mean |activation| of every module stays flat as width grows (slope ≈ 0 per "
           "width doubling); under standard parameterization (SP) some blow up. `scaleplan coord-check` "
           "records the result; μP should pass and SP fail.")

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
        data = loaders.load_json(path)
    except UserError as e:
        st.error(str(e))
        continue
    label = path.relative_to(root).parent.as_posix()
    passed = data.get("passed")
    param = data.get("param") or data.get("parameterization") or "?"
    summary.append({"result": label, "parameterization": param,
                    "passed": "PASS" if passed else ("FAIL" if passed is not None else "?"),
                    "criterion": data.get("criterion", "")})

if summary:
    st.dataframe(pd.DataFrame(summary), hide_index=True)

for path in files:
    try:
        data = loaders.load_json(path)
    except UserError:
        continue
    label = path.relative_to(root).parent.as_posix()
    passed = data.get("passed")
    param = str(data.get("param") or data.get("parameterization") or "").upper()
    head = f"{label} ({param})" if param else label
    if passed:
        st.success(f"{head}: PASS")
    elif passed is not None:
        st.error(f"{head}: FAIL" + (f": {data['reason']}" if data.get("reason") else ""))
    else:
        st.warning(f"{head}: no pass/fail recorded")
    fig_path = next((p for p in (path.with_name("coord_check.fig.json"), path.with_name("coord_check_fig.json"))
                     if p.is_file()), None)
    fig = None
    if fig_path is not None:
        try:
            fig = loaders.load_figure(fig_path)
        except UserError as e:
            st.error(str(e))
    elif isinstance(data.get("slopes"), dict):
        fig = slopes_figure(data["slopes"], data.get("threshold") or data.get("max_abs_slope"))
    if fig is not None:
        st.plotly_chart(fig, width="stretch", key=f"coord-{label}")
    with st.expander(f"{label}: raw result"):
        st.json(data, expanded=False)
