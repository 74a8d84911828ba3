"""Helpers every exporter shares: the provenance header, shell quoting, placeholders, writing.

Rules: an exporter reads only a :class:`planner.plan.Plan` (every value type-checked when plan.yaml
was read) and renders ``{filename: text}``, each value rendered for its target language: numbers
from ints/floats (:func:`py_num` refuses anything else), strings quoted with :func:`shlex.quote` for
bash (so names with spaces, quotes, ``$()`` or ``;`` stay data) and ``repr`` for Python, free text
in ``#`` comments through :func:`one_line` and in a Python docstring through :func:`doc_line`.
:func:`write_files` writes the rendered files atomically (planner.io). Every file carries
scaleplan's version, the plan hash and the command that made it, and says so when the plan was
edited after it was made (:func:`check_not_edited`).
"""
from __future__ import annotations

import math
import re
import shlex
from pathlib import Path
from typing import Any

from planner import __version__
from planner.errors import UserError
from planner.io import atomic_write, to_json
from planner.plan import Plan

#: Launch placeholders a user fills in (plan.data overrides them). Keys are plan.data keys.
PLACEHOLDERS: dict[str, tuple[str, str]] = {
    "data_path": ("DATA_PATH", "TODO: Megatron data prefix(es): 'PREFIX' or 'W1 PREFIX1 W2 PREFIX2' (no .bin/.idx)"),
    "tokenizer_model": ("TOKENIZER_MODEL", "TODO: tokenizer model file or Hugging Face tokenizer folder"),
    "checkpoint_dir": ("CHECKPOINT_DIR", "TODO: folder for checkpoints (saved to and resumed from)"),
    "cache_dir": ("CACHE_DIR", "TODO: folder for Megatron's dataset index cache"),
}
PLACEHOLDER_DEFAULTS = {
    "data_path": "/path/to/dataset_text_document",
    "tokenizer_model": "/path/to/tokenizer.model",
    "checkpoint_dir": "/path/to/checkpoints",
    "cache_dir": "/path/to/cache",
}


def one_line(text: str) -> str:
    """Text safe inside a ``#`` comment: control characters (newlines) become spaces."""
    return re.sub(r"[\x00-\x1f\x7f]+", " ", str(text))


def doc_line(text: str) -> str:
    """Text safe inside a Python ``\"\"\"`` docstring: one line, backslashes and quotes escaped."""
    return one_line(text).replace("\\", "\\\\").replace('"', '\\"')


def edited_note(plan: Plan) -> str | None:
    """The warning every exported file carries when the plan was edited after it was made."""
    if not plan.edited_from:
        return None
    return (f"WARNING: plan edited after it was made (stored plan_hash {plan.edited_from}); "
            "exported with --allow-edited-plan")


def check_not_edited(plan: Plan, allow_edited_plan: bool = False) -> None:
    """UserError when the plan's content no longer matches its stored hash, unless allowed."""
    if plan.edited_from and not allow_edited_plan:
        raise UserError(f"the plan was edited after it was made: its stored plan_hash {plan.edited_from[:12]} "
                        f"does not match its content; regenerate it with `scaleplan plan`, or pass "
                        "--allow-edited-plan to export it anyway (the files then say so)")


def header_lines(plan: Plan, what: str, command: str | None = None, comment: str = "#") -> list[str]:
    """Provenance lines (``comment`` prefix; free text made one line: the caller escapes it further
    for a docstring)."""
    cmd = command or plan.meta.get("command") or "(library call)"
    note = edited_note(plan)
    return [
        f"{comment} {what}",
        f"{comment} made by scaleplan {__version__} from plan {plan.plan_hash}",
        f"{comment} command: {one_line(cmd)}",
        f"{comment} plan created: {one_line(plan.meta.get('created', '?'))}",
    ] + ([f"{comment} {note}"] if note else [])


def py_num(value: Any) -> str:
    """Python source text of an int or a finite float (``repr``); anything else is refused."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            isinstance(value, float) and not math.isfinite(value)):
        raise UserError(f"cannot export {value!r:.60} as a number; regenerate the plan with `scaleplan plan`")
    return repr(value)


def q(value: Any) -> str:
    """Shell-quote one value (numbers formatted compactly first)."""
    return shlex.quote(fmt(value))


def fmt(value: Any) -> str:
    """Compact text for a number or string: ints as ints, floats without noise (3e-4, 0.02, 1)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot export a non-finite number {value!r}")
        if value == int(value) and abs(value) < 1e15:
            return str(int(value))
        return format(value, ".6g")
    return str(value)


def data_value(plan: Plan, key: str) -> Any:
    return (plan.data or {}).get(key, PLACEHOLDER_DEFAULTS[key])


def json_text(obj: Any) -> str:
    """A JSON file's text, exactly as planner.io.write_json writes it."""
    return to_json(obj) + "\n"


def write_files(out_dir: str | Path, files: dict[str, str]) -> list[Path]:
    """Write each rendered file atomically into ``out_dir``; shell scripts (``*.sh``) are made executable."""
    out = Path(out_dir)
    paths = []
    for name, text in files.items():
        p = atomic_write(out / name, text)
        if name.endswith(".sh"):
            p.chmod(0o755)
        paths.append(p)
    return paths


def write_export(trainer: str, plan: Plan, out_dir: str | Path, files: dict[str, str]) -> dict[str, Any]:
    """Write rendered ``files`` into ``out_dir``; returns {trainer, files (paths written), plan_hash}."""
    return {"trainer": trainer, "files": [str(p) for p in write_files(out_dir, files)], "plan_hash": plan.plan_hash}
