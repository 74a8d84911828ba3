"""scaleplan dashboard entry point: ``streamlit run app/main.py -- --studies DIR`` (or ``scaleplan app``).

Five pages (app/views/*.py), each usable without any study (published laws only):
Plan (budget -> launchable plan), Scaling fit, Sweeps, Coordinate check, Lazy layers. The sidebar picks the
study from the folders under the studies root (see app/state.py); pages read ``st.session_state``
keys ``studies_root`` (Path) and ``study`` (Path or None).
"""
from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run app/main.py` puts app/ (not the project root) on sys.path; make `app.*` importable
# when the package is not installed.
_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

import streamlit as st  # noqa: E402

from app import state  # noqa: E402
from planner import __version__  # noqa: E402
from app.server import SHOW_ERROR_DETAILS  # noqa: E402
from planner.errors import UserError  # noqa: E402

st.set_option("client.showErrorDetails", SHOW_ERROR_DETAILS)  # no traceback for a viewer, however started
st.set_page_config(page_title="scaleplan", page_icon=":material/query_stats:", layout="wide")

root = state.studies_root()
names = state.list_studies(root)
with st.sidebar:
    st.markdown(f"**scaleplan {__version__}**")
    options = ["(none: published laws only)"] + names
    labels = {n: state.study_label(root, n) for n in names}
    choice = st.selectbox("Study", options, index=state.default_study_index(names), key="study_name",
                          format_func=lambda n: labels.get(n, n),
                          help=f"study folders under {root}; real-scale studies are published runs "
                               "(`scaleplan study import`), the demo is the pipeline at toy scale")
    if not names:
        st.caption(f"No study folders under `{root}`. Run `scaleplan demo` or start the app with "
                   "`scaleplan app --studies DIR`.")
try:
    study = state.study_dir(root, None if choice == options[0] else choice)
except UserError as e:
    st.error(str(e))
    study = None
st.session_state["studies_root"] = root
st.session_state["study"] = study

_VIEWS = Path(__file__).resolve().parent / "views"
pages = [
    st.Page(str(_VIEWS / "plan.py"), title="Plan", icon=":material/route:", default=True),
    st.Page(str(_VIEWS / "fit.py"), title="Scaling fit", icon=":material/trending_down:"),
    st.Page(str(_VIEWS / "sweeps.py"), title="Sweeps", icon=":material/tune:"),
    st.Page(str(_VIEWS / "coord.py"), title="Coordinate check", icon=":material/straighten:"),
    st.Page(str(_VIEWS / "layers.py"), title="Lazy layers", icon=":material/layers:"),
]
try:
    st.navigation(pages).run()
except UserError as e:  # a malformed artefact of this study: this page says so, the others keep working
    st.error(str(e))
except Exception as e:  # last resort: never a traceback for a viewer (client.showErrorDetails is off too)
    st.error(f"this page failed on study {study.name if study else '(none)'} ({type(e).__name__}: {str(e)[:200]}); "
             "the other pages and studies still work; check the study's files")
