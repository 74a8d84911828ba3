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

from pathlib import Path

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


@st.cache_resource(show_spinner=False, max_entries=32)
def _table(path: str, mtime: float, size: int) -> pd.DataFrame:
    try:
        if path.endswith(".parquet"):
            return pd.read_parquet(path)
        return pd.read_csv(path)
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
