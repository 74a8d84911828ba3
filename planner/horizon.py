"""The training-horizon LR correction: the optimal peak LR falls as the run gets longer.

μP transfers the optimal LR across *width* at a fixed number of training tokens; it says nothing
about the horizon. Measured at a fixed model size, the optimal LR falls with the token count D
roughly as a power law, lr*(D) ∝ D^b with b < 0 (Bjorck et al. 2024, "Scaling Optimal LR Across
Token Horizons", arXiv:2409.19913; Porian et al. 2024, arXiv:2406.19146, tune LR and batch per
budget for the same reason). A proxy tuned on D_proxy tokens and a target trained on D_target
tokens therefore need the factor

    lr_target / lr_proxy = (D_target / D_proxy) ** b.

Conventions:

* The horizon T is a token count (not tokens per parameter): the exponent is measured at one fixed
  width (``scaleplan horizon-check``, :mod:`proxy_train.horizon`), i.e. it is Bjorck et al.'s
  D-exponent at fixed N; μP accounts for the width at fixed D, so the two corrections compose.
* :func:`fit_horizon_exponent` fits log2 lr*(T) = a + b·log2 T by ordinary least squares over
  per-seed optima; the 95% CI is b ± t(0.975, n−2)·SE(b) (the textbook regression interval).
* :data:`MEASURED` is the exponent the project measured and stores in
  ``studies/horizon/horizon.json`` (a test checks that they agree); a correction outside the
  measured horizon range is an extrapolation and says so (:meth:`HorizonCorrection.describe`).
* A plan applies the correction only when the measured CI lies below 0
  (:meth:`HorizonCorrection.unusable_reason`); otherwise it keeps the tuned LR and says why.
* The measurement holds the batch fixed, so tokens and optimizer steps grow together there; a target
  trains with a far larger batch, and which of the two the shift follows is not separated here.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from planner.errors import UserError

STUDY_FILE = "studies/horizon/horizon.json"
STUDY_COMMAND = ("scaleplan horizon-check --data studies/horizon/data --out studies/horizon --width 64 "
                 "--horizons 50,200,800,3200 --seeds 0,1 --lrs=-12:-2:0.5")


def fit_horizon_exponent(log2_t: list[float], log2_lr: list[float], level: float = 0.95) -> dict:
    """OLS fit of ``log2_lr = a + b * log2_t``; returns a, b, SE(b), the ``level`` CI of b, n.

    Needs at least 3 points and 2 distinct horizons; the CI uses Student's t with n − 2 degrees of
    freedom (with exactly collinear points the SE is 0 and the CI collapses onto b).
    """
    from scipy import stats

    pts = [(float(x), float(y)) for x, y in zip(log2_t, log2_lr)
           if x is not None and y is not None and math.isfinite(float(x)) and math.isfinite(float(y))]
    if len(pts) < 3 or len({x for x, _ in pts}) < 2:
        raise UserError(f"the horizon fit needs >= 3 optima over >= 2 horizons, got {len(pts)}; "
                        "run more horizons or seeds")
    n = len(pts)
    mx = sum(x for x, _ in pts) / n
    my = sum(y for _, y in pts) / n
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    b = sum((x - mx) * (y - my) for x, y in pts) / sxx
    a = my - b * mx
    resid = [y - (a + b * x) for x, y in pts]
    dof = n - 2
    s2 = sum(r * r for r in resid) / dof if dof > 0 else 0.0
    se = math.sqrt(s2 / sxx)
    t = float(stats.t.ppf(0.5 + level / 2, dof)) if dof > 0 else math.inf
    half = t * se if se > 0 else 0.0
    return {"intercept": a, "exponent": b, "se": se, "ci_low": b - half, "ci_high": b + half,
            "level": level, "n": n, "dof": dof, "residual_sd": math.sqrt(s2)}


@dataclass(frozen=True)
class HorizonCorrection:
    """A measured horizon exponent ``b`` (lr* ∝ T^b) with its CI and where it came from.

    ``horizons``: the measured range of T (tokens, min and max); ``source``: command and file.
    """

    exponent: float
    ci_low: float
    ci_high: float
    source: str
    horizons: tuple[float, float] | None = None

    def unusable_reason(self) -> str | None:
        """Why this correction must not be applied, or None: it needs a finite exponent whose 95% CI
        lies below 0, i.e. a measured fall of the optimal LR with the horizon (the direction Bjorck
        et al. 2024 report). A CI that includes 0 is no evidence for a shift, and a rising optimum
        extrapolated over the many octaves between a proxy and a target would multiply the LR
        by a large, unsupported factor."""
        vals = (self.exponent, self.ci_low, self.ci_high)
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in vals):
            return f"no measured horizon exponent ({self.source})"
        if self.ci_high >= 0:
            return (f"the measured horizon exponent b = {self.exponent:.3g} (95% CI {self.ci_low:.3g}..{self.ci_high:.3g}; "
                    f"{self.source}) shows no significant fall of the optimal LR with the training horizon, so the "
                    "tuned LR is kept")
        return None

    def lr_factor(self, t_proxy: float, t_target: float) -> float:
        """(T_target / T_proxy) ** b: multiply the proxy-tuned peak LR by this."""
        return lr_factor(self.exponent, t_proxy, t_target)

    def factor_range(self, t_proxy: float, t_target: float) -> tuple[float, float]:
        """The factor at the two CI ends (low, high)."""
        f = sorted((lr_factor(self.ci_low, t_proxy, t_target), lr_factor(self.ci_high, t_proxy, t_target)))
        return f[0], f[1]

    def extrapolation_octaves(self, t_proxy: float, t_target: float) -> float:
        """How far log2(T_target/T_proxy) exceeds the measured span log2(T_max/T_min) (0 when inside)."""
        if not self.horizons:
            return 0.0
        span = math.log2(self.horizons[1] / self.horizons[0])
        return max(0.0, abs(math.log2(t_target / t_proxy)) - span)

    def describe(self, t_proxy: float, t_target: float) -> dict:
        """Everything a plan states about the correction it applied (flat: plan.yaml's hparams.horizon)."""
        lo, hi = self.factor_range(t_proxy, t_target)
        h = self.horizons or (None, None)
        return {"applied": True, "factor": self.lr_factor(t_proxy, t_target), "factor_ci_low": lo,
                "factor_ci_high": hi, "exponent": self.exponent, "exponent_ci_low": self.ci_low,
                "exponent_ci_high": self.ci_high, "t_proxy_tokens": float(t_proxy), "t_target_tokens": float(t_target),
                "measured_min_tokens": h[0], "measured_max_tokens": h[1],
                "extrapolation_octaves": self.extrapolation_octaves(t_proxy, t_target), "source": self.source}

    def to_dict(self) -> dict:
        return asdict(self)


def lr_factor(exponent: float, t_proxy: float, t_target: float) -> float:
    """(T_target / T_proxy) ** exponent, for positive token counts."""
    if not (t_proxy > 0 and t_target > 0 and math.isfinite(t_proxy) and math.isfinite(t_target)):
        raise UserError(f"horizon correction needs positive token counts, got proxy {t_proxy!r}, "
                        f"target {t_target!r}")
    return (float(t_target) / float(t_proxy)) ** float(exponent)


# The project's measurement (studies/horizon/horizon.json "fit"); tests/test_horizon.py checks it.
# Width 64, 2 layers, μP, cosine, 4 horizons 51,200..3,276,800 tokens x 2 seeds (2026-12-02): the 95% CI
# includes 0, so plans keep the tuned LR (HorizonCorrection.unusable_reason) and say so.
MEASURED = HorizonCorrection(
    exponent=-0.1969420384851927, ci_low=-0.6694027093210776, ci_high=0.2755186323506922,
    source=f"{STUDY_COMMAND} -> {STUDY_FILE}", horizons=(51200, 3276800))
