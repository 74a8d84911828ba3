"""Bounded argparse types for the proxy-training commands (issue 18: guard rails on numbers).

Each refuses, when the command line is read, a value beyond the limits of :mod:`proxy_train.limits`
(their sources are there): one line naming the limit, exit 2, nothing written.
"""
from __future__ import annotations

import argparse
import math
import os

from proxy_train.host import usable_cores
from proxy_train.limits import (MAX_BATCH, MAX_LAYERS, MAX_LR, MAX_MULT, MAX_SECONDS, MAX_SEED,
                                  MAX_SEQ_LEN, MAX_STD, MAX_STEPS, MAX_TOKENS, MAX_TRIALS, MAX_WD, MAX_WIDTH,
                                  MAX_VOCAB, MAX_MB, MAX_COORD_WIDTH)


def _number(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return v


def bounded_int(lo: int, hi: int, what: str = "", why: str = ""):
    """argparse type: an integer (also written 1e6) with lo <= value <= hi."""
    def parse(text: str) -> int:
        v = _number(text)
        if v != int(v):
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}")
        v = int(v)
        if not lo <= v <= hi:
            kind = {1: "a positive integer up to", 0: "an integer >= 0 up to"}.get(lo, f"an integer {lo}..")
            raise argparse.ArgumentTypeError(f"expected {kind}{' ' if lo in (0, 1) else ''}{hi:,}"
                                             f"{' ' + what if what else ''}, got {text!r}{'; ' + why if why else ''}")
        return v
    parse.__name__ = "integer"
    return parse


def bounded_float(lo: float, hi: float, *, lo_open: bool = True, what: str = "", why: str = ""):
    """argparse type: a finite number in (lo, hi] (or [lo, hi] with ``lo_open=False``)."""
    def parse(text: str) -> float:
        v = _number(text)
        if (v <= lo if lo_open else v < lo) or v > hi:
            rng = (f"positive number up to {hi:g}" if lo_open and lo == 0 else
                   f"number {'above' if lo_open else 'at least'} {lo:g} and at most {hi:g}")
            raise argparse.ArgumentTypeError(f"expected a {rng}{' ' + what if what else ''}, got {text!r}"
                                             f"{'; ' + why if why else ''}")
        return v
    parse.__name__ = "number"
    return parse


def bounded_int_list(lo: int, hi: int, what: str = "widths"):
    """argparse type: comma-separated integers, each in lo..hi."""
    one = bounded_int(lo, hi)

    def parse(text: str) -> list[int]:
        parts = [t for t in text.split(",") if t.strip()]
        if not parts:
            raise argparse.ArgumentTypeError(f"expected comma-separated integers like 64,128, got {text!r}")
        try:
            return [one(t.strip()) for t in parts]
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {what}, each an integer {lo}..{hi:,}, "
                                             f"got {text!r}") from None
    parse.__name__ = "list"
    return parse


def threads(text: str) -> int:
    """``--threads``: 1 .. the usable CPU cores (more threads than cores only slows a CPU run, and
    OpenMP crashes allocating tens of thousands of them)."""
    n = usable_cores()
    return bounded_int(1, n, why=f"this machine has {n} usable CPU cores")(text)


width = bounded_int(1, MAX_WIDTH, why="no published model is wider than 18432")
layers = bounded_int(1, MAX_LAYERS, why="no published model is deeper than 126 layers")
seq_len = bounded_int(1, MAX_SEQ_LEN)
batch = bounded_int(1, MAX_BATCH)
steps = bounded_int(1, MAX_STEPS)
tokens = bounded_int(1, MAX_TOKENS, why="Llama 3 trained on 15.6T tokens")
seed = bounded_int(0, MAX_SEED, why="samplers take 0 <= seed < 2^32")
lr = bounded_float(0, MAX_LR, why="published peak LRs are 1e-4..1e-2")
init_std = bounded_float(0, MAX_STD)
mult = bounded_float(0, MAX_MULT, why="the μP sweep searches 1/8..16")
weight_decay = bounded_float(0, MAX_WD, lo_open=False)
trials = bounded_int(1, MAX_TRIALS)
seconds = bounded_int(1, MAX_SECONDS)
widths = bounded_int_list(1, MAX_WIDTH)


def folder(text: str) -> str:
    """argparse type for a folder the command will create or fill: not empty, not a file, its
    nearest existing ancestor writable (planner.io.check_creatable), checked before any work.
    A path with ``..`` is resolved first (``D/../E`` is ``E``; nothing named ``D`` gets created)."""
    from pathlib import Path

    from planner.errors import UserError
    from planner.io import check_creatable

    if not text.strip():
        raise argparse.ArgumentTypeError("expected a folder path, got ''")
    path = os.path.realpath(os.path.expanduser(text)) if ".." in Path(text).parts else text
    try:
        check_creatable(path, "folder")
    except UserError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return path


vocab = bounded_int(257, MAX_VOCAB, what="(BPE vocab)",
                    why="a BPE vocab is above the 256-byte alphabet; the largest published is 262,144")
megabytes = bounded_float(0, MAX_MB, what="MiB")
coord_widths = bounded_int_list(8, MAX_COORD_WIDTH)
coord_steps = bounded_int(2, 1000, why="t = 1 is before any update; a few steps show the trend")
coord_layers = bounded_int(1, 64)
coord_seeds = bounded_int(1, 100)


def head_dim(text: str) -> int:
    """An even head size 2..MAX_WIDTH (RoPE rotates pairs of coordinates)."""
    v = bounded_int(2, MAX_WIDTH)(text)
    if v % 2:
        raise argparse.ArgumentTypeError(f"expected an even head size (RoPE rotates pairs), got {text!r}")
    return v
