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
#: The study the dashboard opens on: a real-scale reference study (``scaleplan study import``);
#: where it is absent, the first of :data:`FALLBACK_STUDIES` that exists.
DEFAULT_STUDY = "porian2024"
FALLBACK_STUDIES = ("muennighoff2023", "chinchilla-epoch2024", "demo")


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
    """Index of the default study in a selectbox whose first entry is "(none)": :data:`DEFAULT_STUDY`,
    else the first of :data:`FALLBACK_STUDIES` present, else "(none)"."""
    for name in (DEFAULT_STUDY, *FALLBACK_STUDIES):
        if name in names:
            return names.index(name) + 1
    return 0


def study_label(root: Path, name: str) -> str:
    """How the sidebar names a study, from its study.yaml: a reference study (``reference:``, written
    by ``scaleplan study import``) with its source and "real scale", the toy pipeline demo (``demo:``,
    written by ``scaleplan demo``) as "pipeline demo (toy scale)", anything else by its folder name."""
    from planner.io import read_yaml

    try:
        path = inside(root, name, "study.yaml")
        record = read_yaml(path) if path.is_file() else None
    except (UserError, OSError):
        return name
    if not isinstance(record, dict):
        return name
    ref = record.get("reference")
    if isinstance(ref, dict) and isinstance(ref.get("label"), str):
        return f"{name}: {ref['label'][:80]}"
    if isinstance(record.get("demo"), dict):
        return f"{name}: pipeline demo (toy scale)"
    return name
