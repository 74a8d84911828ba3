"""Do tuned hyperparameters deserve transfer? ``hparams_quality(hp, target_width) -> QualityReport``.

A plan that carries proxy-tuned values (hparams.yaml, :class:`planner.hparams.HParams`) to a model
tens of times wider bets the run on them. This gate checks the evidence hparams.yaml records (its
``sweep`` and ``transfer`` mappings, planner/hparams.py); what is not recorded fails its check,
saying what is missing. Required checks (all must pass):

* ``trials``: finished trials (complete + pruned) >= ``10 + 4 x dimensions``, at least
  :data:`MIN_TRIALS` = 30. Why: Optuna's TPESampler samples at random for its first
  ``n_startup_trials = 10`` trials (optuna 5.0.0, ``samplers/_tpe/sampler.py``; the proxy pins 10 in
  proxy_train/sweep_space.py; Hyperopt's own defaults, ``TPESampler.hyperopt_parameters()``, use
  20) and then models the "good" trials as the best ``ceil(0.1 n)`` (``default_gamma``). 30 trials
  leave 20 model-guided ones, 4 per dimension of the proxy's 5-dimensional space (lr, init_std,
  alpha_out, alpha_in, warmup_frac), and a good set of 3 trials instead of 1. The 4-per-dimension
  figure is our judgement, not a published number. Without a ``sweep`` record, a ``--trials N`` in
  the recorded sweep command still bounds the count from above.
* ``edge``: every searched value lies at least :data:`EDGE_FRACTION` (5%) of its search range
  (log-range for log-uniform parameters) from both bounds: an optimum at a bound may lie beyond it.
  On the proxy's LR range 2^-13..2^-4 that is 0.45 octave.
* ``transfer``: a μTransfer check (proxy_train/transfer.py: per-width optimal log2 LR on a grid) of
  the same parameterization over >= :data:`MIN_TRANSFER_WIDTHS` widths spanning >= 4x, with drift
  (max - min optimum) <= :data:`MAX_DRIFT_OCTAVES` = 1 octave and no optimum at a grid edge (an
  edge optimum makes the drift a lower bound). Why 1 octave: SP's optimum moves about an octave per
  width doubling (TP V Fig. 1, Yang et al. 2022, arXiv:2203.03466; 2.0 octaves over 8x in
  /work/shared/notes/mup-and-sweeps.md §4.5, μP 0.2), so 1 octave over >= 4x is at most half of
  SP's drift; transfer.py's own demonstration goal is the stricter 0.5. SP hyperparameters used at
  another width fail (no transfer rule); at the base width nothing is transferred and it passes.

Stated, not required (``required=False``):

* ``extrapolation``: target width / base width, and how far the transfer check reached.
* ``proxy_scale``: base width >= 256 and depth >= 4, the minimum scale Tensor Programs V names for
  transfer ("HPs generally transfer across scale dimensions if some minimum width (e.g. 256),
  depth (e.g., 4), ... are met", as quoted in huggingface/datablations#13; notes §0).
"""
from __future__ import annotations

import math
import shlex
from dataclasses import dataclass
from typing import Any

MIN_TRIALS = 30
STARTUP_TRIALS = 10   # Optuna TPESampler's n_startup_trials default
TRIALS_PER_DIM = 4
EDGE_FRACTION = 0.05
MIN_TRANSFER_WIDTHS = 3
MIN_TRANSFER_SPAN = 4.0
MAX_DRIFT_OCTAVES = 1.0
MIN_PROXY_WIDTH, MIN_PROXY_DEPTH = 256, 4
DEFAULT_DIMS = 5      # the proxy's search space without --tune-wd (proxy_train/sweep_space.py SPACE)


@dataclass(frozen=True)
class Check:
    """One check: the number measured, the rule it was held to, and why it passed or failed."""

    name: str
    passed: bool
    value: float | None
    threshold: str
    detail: str
    required: bool = True

    def line(self) -> str:
        mark = ("PASS" if self.passed else "FAIL") if self.required else "NOTE"
        shown = "-" if self.value is None else f"{self.value:.4g}"
        return f"[{mark}] {self.name}: {shown} (rule: {self.threshold}): {self.detail}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "value": self.value, "threshold": self.threshold,
                "detail": self.detail, "required": self.required}


@dataclass(frozen=True)
class QualityReport:
    """The checks of one hparams file for one target width (module docstring)."""

    checks: list[Check]
    base_width: int
    target_width: int | None

    @property
    def passes(self) -> bool:
        return all(c.passed for c in self.checks if c.required)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.required and not c.passed]

    def reasons(self) -> list[str]:
        """One line per failed required check ("trials: ...")."""
        return [f"{c.name}: {c.detail}" for c in self.failures]

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def lines(self) -> list[str]:
        n = sum(c.required for c in self.checks)
        verdict = "PASS" if self.passes else f"FAIL ({len(self.failures)} of {n} required checks failed)"
        return [f"hyperparameter quality: {verdict}"] + ["  " + c.line() for c in self.checks]

    def to_dict(self) -> dict[str, Any]:
        return {"passes": self.passes, "base_width": self.base_width, "target_width": self.target_width,
                "checks": [c.to_dict() for c in self.checks]}


def hparams_quality(hp, target_width: int | None = None) -> QualityReport:
    """The gate (module docstring) for ``hp`` (a planner.hparams.HParams) used at ``target_width``."""
    checks = [_trials_check(hp), _edge_check(hp), _transfer_check(hp, target_width),
              _extrapolation_check(hp, target_width), _proxy_scale_check(hp)]
    return QualityReport(checks, hp.base_width, target_width)


# ---------------------------------------------------------------------------------------- trials

def _command_trials(command: Any) -> int | None:
    """``--trials N`` of a recorded ``scaleplan sweep`` command, or None."""
    try:
        words = shlex.split(str(command or ""))
    except ValueError:
        return None
    if "sweep" not in words:
        return None
    for i, w in enumerate(words):
        text = words[i + 1] if w == "--trials" and i + 1 < len(words) else (
            w.split("=", 1)[1] if w.startswith("--trials=") else None)
        if text is not None:
            return int(text) if text.isdigit() else None
    return None


def _trials_check(hp) -> Check:
    space = hp.sweep.get("space") or {}
    dims = len(space) or DEFAULT_DIMS
    need = max(MIN_TRIALS, STARTUP_TRIALS + TRIALS_PER_DIM * dims)
    rule = f">= {need} finished trials ({STARTUP_TRIALS} random TPE start-up + {TRIALS_PER_DIM} per dimension x {dims})"
    n = hp.sweep.get("n_finished")
    if n is not None:
        ok = n >= need
        done = f"{n} finished trials ({hp.sweep.get('n_complete', '?')} complete)"
        return Check("trials", ok, float(n), rule, done + ("" if ok else f" < {need}: sweep longer"))
    bound = _command_trials(hp.meta.get("command"))
    if bound is not None and bound < need:
        return Check("trials", False, float(bound), rule,
                     f"the recorded sweep command ran at most {bound} trials (< {need}); sweep longer")
    return Check("trials", False, None, rule, "hparams.yaml records no sweep summary (sweep.n_finished); "
                 "re-export it with `scaleplan sweep export` from a sweep that recorded it")


# ---------------------------------------------------------------------------------------- edge

def _position(value: float, low: float, high: float, log: bool) -> float | None:
    """Where ``value`` lies in [low, high] as a fraction of the (log-)range; None if undefined."""
    if log:
        if min(value, low, high) <= 0:
            return None
        value, low, high = math.log(value), math.log(low), math.log(high)
    return (value - low) / (high - low) if high > low else None


def _edge_check(hp) -> Check:
    rule = f">= {EDGE_FRACTION:.0%} of the (log-)search range from both bounds, every searched value"
    space = hp.sweep.get("space") or {}
    if not space:
        return Check("edge", False, None, rule, "hparams.yaml records no search ranges (sweep.space); "
                     "without them an optimum at a bound cannot be told from an interior one")
    margins, problems = {}, []
    for name, bounds in sorted(space.items()):
        value, low, high = getattr(hp, name, None), bounds.get("low"), bounds.get("high")
        numbers = [x for x in (value, low, high) if isinstance(x, (int, float)) and not isinstance(x, bool)]
        pos = _position(value, low, high, bool(bounds.get("log"))) if len(numbers) == 3 else None
        if pos is None:
            problems.append(f"{name}: no usable range or value")
            continue
        margins[name] = min(pos, 1 - pos)
        if margins[name] < EDGE_FRACTION:
            side = "low" if pos < 0.5 else "high"
            where = "outside" if margins[name] < 0 else f"within {EDGE_FRACTION:.0%} of"
            problems.append(f"{name} = {value:.4g} {where} its {side} bound {bounds[side]:.4g}")
    worst = min(margins.values()) if margins else None
    if problems:
        return Check("edge", False, worst, rule, "; ".join(problems) + ": widen the range and sweep again")
    name = min(margins, key=margins.get)
    return Check("edge", True, worst, rule, f"closest to a bound: {name} at {margins[name]:.0%} of its range")


# ---------------------------------------------------------------------------------------- transfer

def _transfer_problems(hp, rec: dict[str, Any]) -> list[str]:
    widths = sorted(set(rec.get("widths") or []))
    drift = rec.get("drift_octaves")
    out = []
    if rec.get("param") not in (None, hp.parameterization):
        out.append(f"the check ran {rec['param']}, these values are {hp.parameterization}")
    if len(widths) < MIN_TRANSFER_WIDTHS:
        out.append(f"{len(widths)} widths {widths} (need >= {MIN_TRANSFER_WIDTHS})")
    elif widths[-1] / widths[0] < MIN_TRANSFER_SPAN:
        out.append(f"widths {widths} span {widths[-1] / widths[0]:.3g}x (need >= {MIN_TRANSFER_SPAN:g}x)")
    if drift is None:
        out.append("no drift recorded")
    elif drift > MAX_DRIFT_OCTAVES:
        out.append(f"the optimal LR drifts {drift:.3g} octaves (> {MAX_DRIFT_OCTAVES:g})")
    if rec.get("any_edge"):
        out.append("an optimum sits at a grid edge, so the drift is only a lower bound: extend the LR grid")
    corpus, ours = rec.get("corpus_sha256"), hp.source.get("corpus_sha256")
    if corpus and ours and corpus != ours:
        out.append("the check ran on another corpus than the sweep")
    return out


def _transfer_check(hp, target_width: int | None) -> Check:
    rule = (f">= {MIN_TRANSFER_WIDTHS} widths spanning >= {MIN_TRANSFER_SPAN:g}x, drift <= {MAX_DRIFT_OCTAVES:g} "
            "octave, no edge optimum")
    rec = hp.transfer
    drift = rec.get("drift_octaves")
    if target_width is not None and target_width == hp.base_width:
        return Check("transfer", True, drift, rule, "target width = base width: nothing is transferred")
    if hp.parameterization == "sp":
        return Check("transfer", False, drift, rule, "SP hyperparameters have no width-transfer rule (the "
                     "optimal LR moves roughly like 1/width, TP V Fig. 1); tune with μP")
    if not rec:
        return Check("transfer", False, None, rule, "hparams.yaml records no μTransfer check (transfer); run "
                     f"`scaleplan transfer-check` over >= {MIN_TRANSFER_WIDTHS} widths and record it")
    problems = _transfer_problems(hp, rec)
    if problems:
        return Check("transfer", False, drift, rule, "; ".join(problems))
    widths = sorted(set(rec["widths"]))
    note = ""
    held = rec.get("hp") or {}
    differs = sorted(k for k, v in held.items() if isinstance(getattr(hp, k, None), (int, float))
                     and not math.isclose(v, getattr(hp, k), rel_tol=1e-6))
    if differs:
        note = f" (it held {', '.join(differs)} at other values than these)"
    return Check("transfer", True, drift, rule,
                 f"optimum drift {drift:.3g} octaves over widths {widths}{note}")


# ---------------------------------------------------------------------------------------- stated

def _extrapolation_check(hp, target_width: int | None) -> Check:
    rule = "stated: target width / base width"
    if target_width is None:
        return Check("extrapolation", True, None, rule, "no target width given", required=False)
    factor = target_width / hp.base_width
    widths = sorted(set(hp.transfer.get("widths") or []))
    if widths:
        reach = (f"the transfer check covered widths {widths[0]}-{widths[-1]} "
                 f"(x{widths[-1] / hp.base_width:.3g} of the base)")
    else:
        reach = "no transfer check: it rests on the μP rule alone"
    return Check("extrapolation", True, factor, rule,
                 f"target width {target_width} / base width {hp.base_width} = x{factor:.3g}; {reach}",
                 required=False)


def _proxy_scale_check(hp) -> Check:
    rule = f"base width >= {MIN_PROXY_WIDTH}, depth >= {MIN_PROXY_DEPTH} (TP V's minimum scale)"
    small = []
    if hp.base_width < MIN_PROXY_WIDTH:
        small.append(f"width {hp.base_width} < {MIN_PROXY_WIDTH}")
    if hp.base_depth is not None and hp.base_depth < MIN_PROXY_DEPTH:
        small.append(f"depth {hp.base_depth} < {MIN_PROXY_DEPTH}")
    detail = ("below it: " + ", ".join(small) + "; expect approximate transfer") if small else "met"
    return Check("proxy_scale", not small, float(hp.base_width), rule, detail, required=False)


__all__ = ["Check", "QualityReport", "hparams_quality", "MIN_TRIALS", "EDGE_FRACTION", "MIN_TRANSFER_WIDTHS",
           "MAX_DRIFT_OCTAVES"]
