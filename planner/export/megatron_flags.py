"""Megatron-LM's flags as its parser defines them: check exported arguments against a dump of it.

The dump (shared/data/megatron/pretrain_gpt_flags.json) lists, per ``pretrain_gpt.py`` option, its
spellings (``opts``), ``nargs``, ``type`` and ``choices`` (as ``repr`` text, cut at ~120
characters). :func:`validate_args` reports unknown flags and wrong types, choices or value counts.
Conventions: a value ``True`` is a bare switch; ``None`` or a :class:`Shell` value is a placeholder
filled from the launch script's variables, not checked.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

from planner.errors import UserError
from planner.export.common import fmt
from planner.io import read_json


class Shell(str):
    """A shell expression written unquoted into the script (only ever built from our own constants)."""


def _load_flags(flags_json_path: str | Path) -> dict[str, dict[str, Any]]:
    path = Path(flags_json_path)
    if not path.exists():
        raise UserError(f"Megatron flag list not found: {path}; pass shared/data/megatron/pretrain_gpt_flags.json")
    rows = read_json(path, "Megatron flag list")
    if not isinstance(rows, list) or not all(isinstance(r, dict) and isinstance(r.get("opts"), list) for r in rows):
        raise UserError(f"Megatron flag list {path} is not a list of {{'opts': [...], ...}} rows; "
                        "pass shared/data/megatron/pretrain_gpt_flags.json")
    table: dict[str, dict[str, Any]] = {}
    for r in rows:
        for o in r["opts"]:
            table[o] = r
    return table


def _check_value(flag: str, spec: dict[str, Any], value: Any) -> str | None:
    nargs = spec.get("nargs")
    if nargs == 0:
        return None if value is True else f"{flag} is a switch; got a value {value!r}"
    if value is True:
        return f"{flag} needs a value"
    values = value if isinstance(value, list) else [value]
    if nargs in (None,) and len(values) != 1:
        return f"{flag} takes one value, got {len(values)}"
    if isinstance(nargs, int) and len(values) != nargs:
        return f"{flag} takes {nargs} values, got {len(values)}"
    if nargs == "+" and not values:
        return f"{flag} needs at least one value"
    typ = spec.get("type")
    choices, complete = _parse_choices(flag, spec.get("choices"))
    for v in values:
        text = str(v)
        try:
            if typ == "int":
                int(text)
            elif typ == "float":
                float(text)
        except ValueError:
            return f"{flag} expects {typ}, got {text!r}"
        if choices is not None and text not in choices:
            if complete:
                return f"{flag} must be one of {choices}, got {text!r}"
            # the dump cut this choice list short: only values in its visible part can be checked
            return f"{flag} value {text!r} is not among the visible choices {choices} (the dump's list is truncated)"
    return None


#: The flag dump stores ``repr(choices)`` cut at ~120 characters. Full lists for the cut ones we
#: emit, from Megatron-LM's parser (shared/notes/megatron-and-planning.md §1a, "Data and tokenizer").
_FULL_CHOICES = {
    "--tokenizer-type": ["BertWordPieceLowerCase", "BertWordPieceCase", "GPT2BPETokenizer", "SentencePieceTokenizer",
                         "GPTSentencePieceTokenizer", "HuggingFaceTokenizer", "Llama2Tokenizer", "TikTokenizer",
                         "MultimodalTokenizer", "NullTokenizer", "NullMultimodalTokenizer", "SFTTokenizer"],
}


def _parse_choices(flag: str, text: str | None) -> tuple[list[str] | None, bool]:
    """(choices as strings, whether the list is complete) from the dump's repr text."""
    if not text:
        return None, True
    if flag in _FULL_CHOICES:
        return list(_FULL_CHOICES[flag]), True
    complete = text.rstrip().endswith((")", "]"))
    try:
        return [str(c) for c in ast.literal_eval(text)], True
    except (ValueError, SyntaxError):
        pass
    enum_names = re.findall(r"<\w+\.(\w+): [^>]*>", text)
    if enum_names:
        return enum_names, complete
    return re.findall(r"'([^']*)'", text), complete


def validate_args(args: dict[str, Any] | list[tuple[str, Any]], flags_json_path: str | Path) -> list[str]:
    """Problems with ``args`` against Megatron's parser dump: unknown flags, bad types/choices/nargs.

    ``args`` is a flag -> value dict (``megatron_args.json``; True for switches) or build_args'
    pairs. Returns a list of messages (empty = valid).
    """
    table = _load_flags(flags_json_path)
    items = args.items() if isinstance(args, dict) else args
    problems = []
    for flag, value in items:
        spec = table.get(flag)
        if spec is None:
            problems.append(f"{flag} is not a pretrain_gpt.py flag")
            continue
        if value is None or isinstance(value, Shell):
            continue  # placeholder filled from a shell variable
        msg = _check_value(flag, spec, value if value is True or isinstance(value, list) else fmt(value))
        if msg:
            problems.append(msg)
    return problems
