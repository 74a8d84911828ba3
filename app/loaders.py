"""Cached readers of study artefacts (fit.json, runs table, sweep studies, transfer/coord-check JSON).

Caching convention: every loader is keyed by (resolved path, mtime, size), so editing or
regenerating a file is picked up on the next rerun while unchanged files are read once. We use
``st.cache_resource`` (objects kept in memory as they are) rather than ``st.cache_data``, which
pickles its values: this project never pickles. Callers treat returned objects as read-only
(copy a DataFrame before changing it).

All paths come from :mod:`app.state` (already checked to be inside the studies root). Files are
parsed as data only: JSON, YAML (safe loader), CSV/Parquet via pandas; sweep studies through the
library (``proxy_train.sweep_summary``: it opens the Optuna journal and counts the trials).
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import pandas as pd
import streamlit as st

from planner.errors import UserError
from planner.io import read_json

# File names other helpers write into a study folder (docs/CONTRACTS.md and their task briefs).
FIT_FILES = ("fit.json",)
RUNS_FILES = ("runs.csv", "runs.parquet")
TRIALS_FILES = ("trials.csv", "trials.parquet")
TRANSFER_FILES = ("transfer.json",)
COORD_FILES = ("coord_check.json",)
HPARAMS_FILES = ("hparams.yaml",)


def _key(path: Path) -> tuple[str, float, int]:
    st_ = path.stat()
    return str(path), st_.st_mtime, st_.st_size


@st.cache_resource(show_spinner=False, max_entries=64)
def _json(path: str, mtime: float, size: int):
    return read_json(path)


def load_json(path: Path):
    """A JSON artefact (UserError with the reason when it is malformed)."""
    return _json(*_key(path))


def study_file(study: Path | None, *names: str, show: bool = True) -> Path | None:
    """:func:`app.state.study_file`, but a file that resolves outside the study (a symlink) gives an
    error box naming it (``show``) and None, so the page goes on without it."""
    from app import state

    try:
        return state.study_file(study, *names)
    except UserError as e:
        if show:
            st.error(f"{study.name}/{names[0]}: {e}")
        return None


def load_object(path: Path, what: str) -> dict:
    """A JSON artefact that must be an object (coord_check.json, transfer.json); UserError naming the
    file otherwise (a list or a number is not a result file)."""
    data = load_json(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: {what} must be a JSON object, got a {type(data).__name__}; regenerate it")
    return data


def artefact_error(path: Path, message: str) -> None:
    """Report an unreadable artefact on the view of its own study (or with no study chosen): an
    error box naming the file; under another study only a one-line caption, so one broken study
    never fills the pages of the others."""
    study = st.session_state.get("study")
    label = str(path)
    text = message if label in message else f"{label}: {message}"
    if study is None or Path(study) in Path(path).parents:
        st.error(text)
    else:
        root = st.session_state.get("studies_root")
        where = Path(path).relative_to(root).as_posix() if root and Path(root) in Path(path).parents else label
        st.caption(f"{where} could not be read (pick its study to see why)")


@contextlib.contextmanager
def shown_errors(path: Path) -> Iterator[None]:
    """Run a block that renders one artefact; any error ends the block and is reported by
    :func:`artefact_error` (a UserError as written, anything else as "unexpected content"), so one
    malformed file never breaks the rest of the page. Streamlit's control-flow exceptions (rerun,
    stop) are BaseExceptions and pass through."""
    try:
        yield
    except UserError as e:
        artefact_error(path, str(e))
    except Exception as e:  # malformed content reaching the rendering code: shown, never a traceback
        artefact_error(path, f"unexpected content ({type(e).__name__}: {str(e)[:200]}); regenerate the file")


@st.cache_resource(show_spinner=False, max_entries=32)
def _table(path: str, mtime: float, size: int) -> pd.DataFrame:
    try:
        if path.endswith(".parquet"):
            from app.upload import check_parquet_size

            check_parquet_size(path, path)  # a study's table meets the upload's decoded-size bounds
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except UserError:
        raise
    except Exception as e:  # pandas raises many types for malformed files
        raise UserError(f"cannot read table {path} ({type(e).__name__}: {e}); regenerate it") from None


def load_table(path: Path) -> pd.DataFrame:
    """A CSV or Parquet table (read-only: copy before changing)."""
    return _table(*_key(path))


@st.cache_resource(show_spinner=False, max_entries=16)
def _law(path: str, mtime: float, size: int):
    from planner.laws import load_law

    return load_law(path)


def load_fitted_law(path: Path):
    """The :class:`planner.laws.ScalingLaw` of a study's fit.json."""
    return _law(*_key(path))


@st.cache_resource(show_spinner=False, max_entries=16)
def _hparams(path: str, mtime: float, size: int):
    from planner.hparams import HParams

    return HParams.read(path)


def load_hparams(path: Path):
    """A study's hparams.yaml as :class:`planner.hparams.HParams`."""
    return _hparams(*_key(path))


@st.cache_resource(show_spinner=False, max_entries=8)
def _sweeps(path: str, mtime: float, size: int) -> dict:
    from proxy_train.sweep_summary import journal_summaries

    return journal_summaries(path)


def load_sweeps(study: Path | None) -> tuple[Path | None, dict]:
    """The folder's Optuna journal (None without one) and its studies: name ->
    :class:`proxy_train.sweep_summary.SweepSummary` (read only)."""
    from proxy_train.sweep_storage import find_journal

    journal = find_journal(study)
    return journal, (_sweeps(*_key(journal)) if journal is not None else {})


def find_files(study: Path | None, pattern: str) -> list[Path]:
    """Files matching ``pattern`` (glob, may include ``**/``) inside a study, sorted; [] without a study."""
    if study is None or not study.is_dir():
        return []
    root = study.resolve()
    out = []
    for p in sorted(study.glob(pattern)):
        rp = p.resolve()
        if p.is_file() and (root in rp.parents):  # skip symlinks leading outside the study
            out.append(p)
    return out


@st.cache_resource(show_spinner=False, max_entries=16)
def _figure(path: str, mtime: float, size: int):
    import plotly.io as pio

    try:
        return pio.from_json(Path(path).read_text(encoding="utf-8"))
    except Exception as e:
        raise UserError(f"cannot read plotly figure {path} ({type(e).__name__}); regenerate it") from None


def load_figure(path: Path):
    """A plotly figure saved with ``fig.to_json()`` (``*.fig.json`` / ``*_fig.json``)."""
    return _figure(*_key(path))


@st.cache_resource(show_spinner=False, max_entries=16)
def _yaml(path: str, mtime: float, size: int):
    from planner.io import read_yaml

    return read_yaml(path)


def load_reference(study: Path | None) -> dict | None:
    """The ``reference`` record of a study built from published runs (study.yaml written by
    ``scaleplan study import``: source, citation, licence, command), or None for other studies."""
    path = study_file(study, "study.yaml", show=False)
    if path is None:
        return None
    try:
        record = _yaml(*_key(path))
    except UserError:
        return None
    ref = record.get("reference") if isinstance(record, dict) else None
    return ref if isinstance(ref, dict) else None

