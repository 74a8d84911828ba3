"""Number formatting for people: 1.8B params, 2.07T tokens, 3.1e23 FLOPs, 41.2 GB, 12.3 days.

Convention: decimal (SI) prefixes for counts (K = 1e3, M = 1e6, B = 1e9, T = 1e12), scientific
notation for FLOPs, GB = 1e9 bytes and GiB = 2**30 bytes, three significant digits by default.
"""
from __future__ import annotations

import math

_SUFFIXES = [(1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")]


def _bad(x) -> bool:
    return x is None or (isinstance(x, float) and not math.isfinite(x))


def human(x, digits: int = 3) -> str:
    """1_800_000_000 -> '1.8B'; 2.07e12 -> '2.07T'; 950 -> '950'."""
    if _bad(x):
        return "n/a"
    x = float(x)
    for scale, suffix in _SUFFIXES:
        if abs(x) >= scale:
            return f"{x / scale:.{digits}g}{suffix}"
    return f"{x:.{digits}g}"


def flops(x, digits: int = 2) -> str:
    """3.14e23 -> '3.1e23' (two significant digits, no '+' in the exponent)."""
    if _bad(x):
        return "n/a"
    mant, exp = f"{float(x):.{digits - 1}e}".split("e")
    return f"{mant}e{int(exp)}"


def gb(nbytes, digits: int = 3) -> str:
    """Bytes -> 'x GB' (1 GB = 1e9 bytes)."""
    return "n/a" if _bad(nbytes) else f"{float(nbytes) / 1e9:.{digits}g} GB"


def money(x) -> str:
    if _bad(x):
        return "n/a"
    x = float(x)
    return f"${human(x)}" if abs(x) >= 1e4 else f"${x:,.0f}"


def days(x) -> str:
    if _bad(x):
        return "n/a"
    x = float(x)
    return f"{x * 24:.3g} hours" if x < 1 else f"{x:.3g} days"


def interval(lo, hi, f=human) -> str:
    """'[1.2B, 2.3B]' or '' when there is no interval."""
    if _bad(lo) or _bad(hi):
        return ""
    return f"[{f(lo)}, {f(hi)}]"
