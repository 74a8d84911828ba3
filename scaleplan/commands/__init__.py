"""Shared pieces of the `scaleplan` verbs: `emit` (human text or --json) and argparse value types.

Conventions: a bad value is an argparse type error of one line, "expected ..., got VALUE", which
the parser turns into exit status 2 (scaleplan.cli)."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from planner.errors import UserError
from planner.io import check_creatable, to_json
from proxy_train.host import usable_cores  # noqa: F401  (re-exported for the commands)


def emit(args: argparse.Namespace, payload, human: str) -> None:
    """Print ``payload`` as JSON with ``--json``, else the human-readable text."""
    if getattr(args, "json", False):
        sys.stdout.write(to_json(payload) + "\n")
    else:
        sys.stdout.write(human.rstrip("\n") + "\n")


def _checked(text: str, convert, valid, unparsable: str, out_of_range: str):
    """``convert(text)`` if it parses and passes ``valid``, else argparse's one-line type error."""
    try:
        v = convert(text)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"{unparsable}, got {text!r}") from None
    if not valid(v):
        raise argparse.ArgumentTypeError(f"{out_of_range}, got {text!r}")
    return v


def _int(text: str) -> int:
    """An integer, also written as 1e6 (counts on the command line often are)."""
    return int(float(text)) if "e" in text.lower() else int(text)


def positive_int(text: str) -> int:
    return _checked(text, _int, lambda v: v > 0, "expected a positive integer", "expected a positive integer")


def positive_float(text: str) -> float:
    return _checked(text, float, lambda v: math.isfinite(v) and v > 0, "expected a positive number",
                    "expected a positive finite number")


def nonneg_float(text: str) -> float:
    return _checked(text, float, lambda v: math.isfinite(v) and v >= 0, "expected a number >= 0",
                    "expected a finite number >= 0")


def nonneg_int(text: str) -> int:
    return _checked(text, int, lambda v: v >= 0, "expected an integer >= 0", "expected an integer >= 0")


def output_file(text: str) -> str:
    """argparse type for a file the command will write: checked before any work is done (not a
    folder; its folder can be created: :func:`planner.io.check_creatable`), so a bad path costs nothing."""
    path = Path(text)
    if not text or path.is_dir():
        raise argparse.ArgumentTypeError(f"expected a file path to write, got {text!r} (a folder); "
                                         "add a file name")
    try:
        check_creatable(path.parent, f"the folder of {text!r}")
    except UserError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def add_workers_argument(p: argparse.ArgumentParser, *, default: int, help: str) -> None:
    """``--workers N`` (worker processes, one thread each) and ``--oversubscribe``; scaleplan.cli
    refuses more workers than usable cores unless ``--oversubscribe`` is given."""
    p.add_argument("--workers", type=positive_int, default=default, help=help)
    p.add_argument("--oversubscribe", action="store_true",
                   help="allow more --workers than this machine's usable CPU cores")


def check_workers(args: argparse.Namespace) -> None:
    """UserError when ``--workers`` exceeds the usable cores without ``--oversubscribe``."""
    n = getattr(args, "workers", None)
    if n is not None and n > usable_cores() and not getattr(args, "oversubscribe", False):
        raise UserError(f"--workers {n} is more than the {usable_cores()} usable CPU cores of this machine "
                        "(each worker is a process with one thread); lower it, or pass --oversubscribe")


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
    except (ValueError, OverflowError):  # OverflowError: inf
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
