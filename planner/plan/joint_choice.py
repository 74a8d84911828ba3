"""Step 2, the joint choice: shape and layout chosen together inside the near-optimal band.

At a fixed budget the loss is flat near N*: along an iso-FLOP line L(N, C / 6N) is convex in
log N with its minimum at N* (Hoffmann et al. 2022, Approach 2's IsoFLOP profiles, Fig. 3), so a
model well away from N* costs a fraction of a percent of loss. The band is the N whose loss at the
same compute is within ``tolerance`` (relative; ``DEFAULT_LOSS_TOLERANCE`` = 0.25 %) of L*.

Inside the band the plan weighs the hardware: every family-rule shape in the band (and the plain
compute-optimal shape, the search's best near N*, as the baseline) is carried through steps 3-5
(realise.py: batch, layout search, memory, time), then

* a FLOPs budget takes the candidate that finishes soonest (equal FLOPs; a better-shaped model on
  a better layout runs at higher MFU); ties go to the lower predicted loss;
* a GPU-time budget (GPU-hours, or GPUs x days) takes the candidate with the lowest predicted loss
  at the deadline: each trains the tokens its layout reaches in that time.

The plan records every option, which won, its loss penalty vs N*, and what the choice gained over
the baseline (days saved, or nats of loss gained). Predicted losses are the plan's law at the
option's (total N, tokens).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from planner.errors import UserError
from planner.plan.realise import Realised, is_deadline
from planner.plan.sections import PLAN_FIX, where
from planner.schema import check_record

DEFAULT_LOSS_TOLERANCE = 0.0025
#: Shapes taken from the band (besides the baseline); each costs one layout search.
BAND_SHAPES = 6
OBJECTIVES = ("fastest", "lowest-loss")
#: FLOPs budget: options within 0.5 % of the fastest count as equally fast (whole steps and the
#: batch rounding move the time by less than that), and the lowest loss among them wins.
DAYS_TIE = 0.005


def near_optimal_band(law, C: float, tolerance: float, k: float = 6.0) -> tuple[float, float]:
    """(N_lo, N_hi): sizes whose loss at compute C (D = C / kN) is within ``tolerance`` of L*.

    Each edge is the one root of L(N) = L* (1 + tolerance) on its side of N* (the curve is
    convex in log N), found by Brent's method.
    """
    from scipy import optimize  # loaded when a plan is made, not when one is read

    if not (isinstance(tolerance, (int, float)) and math.isfinite(tolerance) and 0 < tolerance < 1):
        raise UserError(f"loss tolerance must be a fraction in (0, 1), got {tolerance!r} (e.g. 0.0025 for 0.25%)")
    n_star = law.optimal(C, k, interval=None).N
    target = law.predict(n_star, C / (k * n_star)) * (1.0 + tolerance)

    def excess(logn: float) -> float:
        n = math.exp(logn)
        return law.predict(n, C / (k * n)) - target

    mid, span = math.log(n_star), math.log(1e6)
    return (math.exp(optimize.brentq(excess, mid - span, mid, xtol=1e-12)),
            math.exp(optimize.brentq(excess, mid, mid + span, xtol=1e-12)))


@dataclass(frozen=True, kw_only=True)
class BandOption:
    """One (shape, layout) candidate of the joint choice, as plan.yaml records it."""

    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    d_ffn: int
    total_params: int
    tokens: int
    loss: float  # the plan's law at (total_params, tokens), nats
    penalty: float  # loss / L* - 1
    layout: str
    memory_gib: float
    mfu: float
    days: float
    baseline: bool = False  # the plain compute-optimal shape
    chosen: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, d: dict[str, Any], name: str = "choice.options") -> "BandOption":
        rules = {**dict.fromkeys(("n_layers", "d_model", "n_heads", "n_kv_heads", "d_ffn", "total_params", "tokens",
                                  "loss", "memory_gib", "days"), "positive"), "mfu": "fraction"}
        return cls(**check_record(cls, d, where(name), fix=PLAN_FIX, rules=rules))


@dataclass(frozen=True, kw_only=True)
class JointChoice:
    """The band, every option in it, and what choosing jointly gained over the baseline."""

    tolerance: float
    band: list[float]  # [N_lo, N_hi], total parameters
    objective: str  # fastest (FLOPs budget) | lowest-loss (GPU-time budget)
    options: list[BandOption] = field(default_factory=list)
    days_saved: float = 0.0  # baseline days - chosen days (fastest)
    loss_gained: float = 0.0  # baseline loss - chosen loss, nats (lowest-loss)
    why: str = ""

    @property
    def chosen(self) -> BandOption:
        return next(o for o in self.options if o.chosen)

    def to_dict(self) -> dict[str, Any]:
        return {"tolerance": self.tolerance, "band": list(self.band), "objective": self.objective,
                "options": [o.to_dict() for o in self.options], "days_saved": self.days_saved,
                "loss_gained": self.loss_gained, "why": self.why}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "JointChoice":
        names = ("tolerance", "band", "objective", "days_saved", "loss_gained", "why")
        kw = check_record(cls, {k: v for k, v in d.items() if k != "options"}, where("choice"), fix=PLAN_FIX,
                          rules={"tolerance": "open_fraction", "objective": OBJECTIVES, "band": "positive",
                                 "days_saved": "nonneg", "loss_gained": "nonneg"}, fields=names)
        raw = d.get("options") or []
        if not isinstance(raw, list):
            raise UserError(f"{where('choice')}.options must be a list; {PLAN_FIX}")
        options = [BandOption.from_dict(o, f"choice.options[{i}]") for i, o in enumerate(raw)]
        if options and sum(o.chosen for o in options) != 1:
            raise UserError(f"{where('choice')}.options must mark exactly one option chosen; {PLAN_FIX}")
        return cls(options=options, **kw)


def choose_jointly(request, realised: list[Realised], baseline: Realised, law, optimal_loss: float,
                   band: tuple[float, float], tolerance: float) -> tuple[Realised, JointChoice]:
    """(the winning candidate, the record of the choice); ``realised`` includes the baseline."""
    deadline = is_deadline(request, realised[0].budget)
    losses = [float(law.predict(r.shape.total_params, r.tokens)) for r in realised]
    if deadline:
        best = min(range(len(realised)), key=lambda i: (losses[i], realised[i].days))
    else:  # within DAYS_TIE of the fastest, the lowest loss
        soonest = min(r.days for r in realised)
        best = min((i for i, r in enumerate(realised) if r.days <= soonest * (1 + DAYS_TIE)), key=lambda i: losses[i])
    base = next(i for i, r in enumerate(realised) if r is baseline)
    options = [_option(r, losses[i], optimal_loss, baseline=i == base, chosen=i == best)
               for i, r in enumerate(realised)]
    win, ref = options[best], options[base]
    choice = JointChoice(tolerance=tolerance, band=[float(band[0]), float(band[1])],
                         objective="lowest-loss" if deadline else "fastest", options=options,
                         days_saved=max(0.0, ref.days - win.days) if not deadline else 0.0,
                         loss_gained=max(0.0, ref.loss - win.loss) if deadline else 0.0,
                         why=_why(win, ref, deadline, len(options)))
    return realised[best], choice


def _option(r: Realised, loss: float, optimal_loss: float, *, baseline: bool, chosen: bool) -> BandOption:
    s = r.shape
    e = r.time_cost.estimate
    return BandOption(n_layers=s.n_layers, d_model=s.d_model, n_heads=s.n_heads, n_kv_heads=s.n_kv_heads,
                      d_ffn=s.d_ffn, total_params=s.total_params, tokens=r.tokens, loss=loss,
                      penalty=loss / optimal_loss - 1.0, layout=r.placement.layout.describe(),
                      memory_gib=r.memory.breakdown.total_gib, mfu=e.mfu, days=e.days, baseline=baseline,
                      chosen=chosen)


def _why(win: BandOption, ref: BandOption, deadline: bool, n: int) -> str:
    shape = f"{win.n_layers} layers x d_model {win.d_model} ({win.total_params / 1e9:.3g}B)"
    if win is ref or (win.n_layers, win.d_model, win.d_ffn) == (ref.n_layers, ref.d_model, ref.d_ffn):
        return f"of {n} options in the band, the compute-optimal shape {shape} is also the best on this hardware"
    if abs(ref.days - win.days) <= DAYS_TIE * ref.days and not deadline:
        return (f"of {n} options, {shape} is as fast as the compute-optimal shape (MFU {win.mfu:.1%}) and "
                f"predicts {ref.loss - win.loss:.4f} nats lower loss")
    if deadline:
        return (f"of {n} options, {shape} reaches loss {win.loss:.4f} by the deadline ({win.tokens:.3g} tokens at "
                f"MFU {win.mfu:.1%}), {ref.loss - win.loss:.4f} nats below the compute-optimal shape")
    return (f"of {n} options, {shape} runs at MFU {win.mfu:.1%} vs {ref.mfu:.1%} for the compute-optimal shape: "
            f"{ref.days - win.days:.1f} days sooner at {win.penalty:+.2%} loss vs L*")
