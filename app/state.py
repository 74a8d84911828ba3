"""Where the dashboard reads from: the studies root, the chosen study, safe paths inside it.

Security convention: the app reads only under one studies root (``--studies DIR`` after ``--`` on
the streamlit command line, else ``$SCALEPLAN_STUDIES``, else ``./studies``). A study is picked
from the list of folders directly under the root (never typed as a path), and every path is
resolved (symlinks followed) and refused if it lands outside the root.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from planner.errors import UserError

ENV_VAR = "SCALEPLAN_STUDIES"
DEFAULT_STUDY = "demo"


def studies_root(argv: list[str] | None = None) -> Path:
    """The studies root: ``--studies`` in argv, else $SCALEPLAN_STUDIES, else ./studies (resolved)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--studies", default=None)
    known, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    raw = known.studies or os.environ.get(ENV_VAR) or "studies"
    return Path(raw).expanduser().resolve()


def inside(root: Path, *parts: str) -> Path:
    """``root/parts`` resolved; UserError if it escapes ``root`` (``..``, absolute parts, symlinks)."""
    root = root.resolve()
    path = root.joinpath(*parts).resolve()
    if path != root and root not in path.parents:
        raise UserError(f"{'/'.join(parts)} is outside the studies folder {root}; pick a study from the list")
    return path


def list_studies(root: Path) -> list[str]:
    """Names of the study folders directly under ``root`` (hidden folders and escapes skipped)."""
    if not root.is_dir():
        return []
    names = []
    for p in sorted(root.iterdir()):
        if p.name.startswith(".") or not p.is_dir():
            continue
        try:
            inside(root, p.name)
        except UserError:
            continue  # a symlink pointing outside the root
        names.append(p.name)
    return names


def study_dir(root: Path, name: str | None) -> Path | None:
    """The folder of study ``name`` (one of :func:`list_studies`), or None when no study is chosen."""
    if not name:
        return None
    if name not in list_studies(root):
        raise UserError(f"no study named {name!r} under {root}; pick one from the list")
    return inside(root, name)


def study_file(study: Path | None, *names: str) -> Path | None:
    """The first of ``names`` that exists as a file inside ``study`` (checked to stay inside)."""
    if study is None:
        return None
    for name in names:
        p = inside(study, name)
        if p.is_file():
            return p
    return None


def default_study_index(names: list[str]) -> int:
    """Index of the default study in a selectbox whose first entry is "(none)"."""
    return names.index(DEFAULT_STUDY) + 1 if DEFAULT_STUDY in names else 0
