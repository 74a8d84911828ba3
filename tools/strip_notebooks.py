"""Strip outputs from Jupyter notebooks so the repository holds code and prose only.

Removes every code cell's ``outputs`` and ``execution_count``, cell metadata other than ``tags``
(the ``parameters`` tag must survive: papermill-style runs need it) and run-time notebook
metadata (widget state, ...). The kernelspec and language_info stay. Works on the JSON directly
(nbformat 4 layout), so it needs no Jupyter packages.

Usage:
    python tools/strip_notebooks.py                    # strip studies/notebooks/*.ipynb in place
    python tools/strip_notebooks.py --check            # exit 1 and list notebooks that hold outputs
    python tools/strip_notebooks.py path/a.ipynb dir/  # files or folders (searched recursively)
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = ROOT / "studies" / "notebooks"
KEEP_CELL_METADATA = ("tags",)
KEEP_NOTEBOOK_METADATA = ("kernelspec", "language_info")


def strip(nb: dict) -> dict:
    """A copy of the notebook dict ``nb`` without outputs, execution counts or run-time metadata."""
    out = json.loads(json.dumps(nb))
    for cell in out.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        meta = cell.get("metadata", {})
        cell["metadata"] = {k: meta[k] for k in KEEP_CELL_METADATA if k in meta}
    meta = out.get("metadata", {})
    out["metadata"] = {k: meta[k] for k in KEEP_NOTEBOOK_METADATA if k in meta}
    return out


def dumps(nb: dict) -> str:
    """Serialise like nbformat does (indent 1, sorted keys, UTF-8), so diffs stay small."""
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def problems(nb: dict) -> list[str]:
    """What in ``nb`` a stripped notebook must not have (empty list = clean)."""
    found = []
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        if cell.get("outputs"):
            found.append(f"cell {i} has outputs")
        if cell.get("execution_count") is not None:
            found.append(f"cell {i} has an execution count")
    return found


def notebooks(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for p in map(Path, paths or [str(DEFAULT_DIR)]):
        if p.is_dir():
            found += sorted(q for q in p.rglob("*.ipynb") if ".ipynb_checkpoints" not in q.parts)
        elif p.suffix == ".ipynb" and p.is_file():
            found.append(p)
        else:
            raise SystemExit(f"error: {p} is not a notebook or a folder; pass .ipynb files or folders")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Strip outputs and execution counts from notebooks.")
    parser.add_argument("paths", nargs="*", help=f"notebooks or folders (default {DEFAULT_DIR.relative_to(ROOT)})")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if any notebook needs stripping")
    args = parser.parse_args(argv)
    dirty = 0
    for path in notebooks(args.paths):
        try:
            text = path.read_text(encoding="utf-8")
            nb = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            print(f"error: {path} is not a JSON notebook ({e}); fix or delete it", file=sys.stderr)
            return 2
        clean = dumps(strip(nb))
        if clean == text:
            continue
        dirty += 1
        if args.check:
            print(f"{path}: needs stripping ({'; '.join(problems(nb)) or 'metadata/format'})")
        else:
            from planner.io import atomic_write

            atomic_write(path, clean)
            print(f"stripped {path}")
    if args.check and dirty:
        print(f"{dirty} notebook(s) need stripping: run python tools/strip_notebooks.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
