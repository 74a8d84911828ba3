"""CLI command groups of the planner (argparse only; handlers call the library)."""
from __future__ import annotations

import argparse
import math
import sys

from planner.errors import UserError
from planner.io import to_json


def emit(args: argparse.Namespace, payload, human: str) -> None:
    """Print ``payload`` as JSON with ``--json``, else the human-readable text."""
    if getattr(args, "json", False):
        sys.stdout.write(to_json(payload) + "\n")
    else:
        sys.stdout.write(human.rstrip("\n") + "\n")


def positive_int(text: str) -> int:
    try:
        v = int(float(text)) if "e" in text.lower() else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return v


def nonneg_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not math.isfinite(v) or v < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return v


def nonneg_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return v


def fraction(text: str, *, open_interval: bool = False) -> float:
    """A number in [0, 1] (or in (0, 1) with ``open_interval``)."""
    v = nonneg_float(text)
    if v > 1 or (open_interval and not 0 < v < 1):
        where = "strictly between 0 and 1" if open_interval else "between 0 and 1"
        raise argparse.ArgumentTypeError(f"expected a fraction {where}, got {text!r}")
    return v


def open_fraction(text: str) -> float:
    return fraction(text, open_interval=True)


def int_list(text: str) -> list[int]:
    try:
        vals = [int(float(t)) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 64,128, got {text!r}") from None
    if not vals or any(v <= 0 for v in vals):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return vals


def float_list(text: str) -> list[float]:
    try:
        vals = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers like 1e18,3e18, got {text!r}") from None
    if not vals or any((not math.isfinite(v)) or v <= 0 for v in vals):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive numbers, got {text!r}")
    return vals


__all__ = ["emit", "positive_int", "positive_float", "nonneg_float", "nonneg_int", "fraction", "open_fraction",
           "int_list", "float_list", "UserError"]
