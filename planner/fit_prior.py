"""A Gaussian prior on the irreducible loss E, added to the Approach-3 fit objective.

Why a prior on E: over the compute range of a small ladder the asymptote E trades off against
A / N^alpha and B / D^beta, and a freely fitted E is often too low (too optimistic at scale);
Marin's scaling-law work found that pinning E stabilised a 1e23-FLOP prediction. A prior is the
soft version of ``fixed_E``: it pulls E toward a value from another fit or a publication by as
much as that value's uncertainty allows, and lets the runs overrule it where they can.

Convention (what :class:`EPrior` adds to the objective):

    kappa / 2 * ((log E - log mean) / (sd / mean))^2

* On **log E**, not E: the solver's coordinate is e = log E (planner/fit_solver.py), so the
  penalty is exactly quadratic there (the Newton Hessian stays exact), E stays positive, and a
  relative uncertainty is what published E's carry. sd / mean is the delta-method SD of log E.
* kappa puts the penalty on the scale of a log-likelihood: the fit's summed Huber loss is
  approximately kappa x (negative log-likelihood of the residuals), with kappa = delta * b
  (b = mean |r|, the Laplace scale of the log residuals r) when most residuals lie outside the
  Huber delta (the linear part, ~delta |r|), else kappa = mean r^2 (the quadratic part,
  r^2 / 2 = sigma^2 * r^2 / (2 sigma^2)). r are the residuals of the same fit without the prior.
  So a 1-SD departure of E costs what half a nat of data likelihood costs; sd -> 0 pins E
  (``fixed_E``), sd -> infinity leaves the free fit.

Sources of the prior (``scaleplan fit --E-prior MEAN,SD | --E-prior-from FIT.json|PRESET``):
a fit.json's E with SD = its 95 % interval's half-width / 1.96; a published preset of
:data:`planner.laws.PRESETS` with SD = :data:`PRESET_REL_SD` x E (presets carry no interval).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from planner.errors import UserError

#: Relative SD given to a published preset's E (presets carry no interval; 5 % because a preset's
#: E belongs to another data set and tokenizer, so it is a weak prior, not a pin).
PRESET_REL_SD = 0.05


@dataclass(frozen=True)
class EPrior:
    """Gaussian prior on E (nats): ``mean`` and ``sd``; ``source`` says where they came from."""

    mean: float
    sd: float
    source: str = "given"

    def __post_init__(self):
        for name in ("mean", "sd"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise UserError(f"E prior {name} must be a positive number (nats), got {v!r}; "
                                "give --E-prior MEAN,SD with both > 0")

    @property
    def log_mean(self) -> float:
        return math.log(self.mean)

    @property
    def log_sd(self) -> float:
        """SD of log E (delta method: sd / mean)."""
        return self.sd / self.mean

    def kappa(self, residuals: np.ndarray, delta: float) -> float:
        """The likelihood scale of the Huber objective (module docstring), from unpenalised residuals."""
        r = np.abs(np.asarray(residuals, dtype=float))
        b = float(np.mean(r)) if r.size else delta
        return delta * b if b > delta else float(np.mean(r * r)) or delta * delta

    def penalty(self, residuals, delta: float) -> tuple[float, float]:
        """(mu, k) for the solver: k / 2 (e - mu)^2 with k = kappa / sd_log^2."""
        return self.log_mean, self.kappa(residuals, delta) / self.log_sd ** 2

    def to_dict(self) -> dict:
        return {"mean": self.mean, "sd": self.sd, "source": self.source, "on": "log E",
                "sd_log": self.log_sd}


def parse_e_prior(text: str) -> EPrior:
    """``"1.8,0.05"`` -> EPrior(1.8, 0.05); UserError naming the format otherwise."""
    parts = [t.strip() for t in str(text).split(",")]
    try:
        mean, sd = (float(t) for t in parts)
    except ValueError:
        raise UserError(f"--E-prior takes MEAN,SD in nats (e.g. 1.8,0.05), got {text!r}") from None
    return EPrior(mean, sd, source=f"--E-prior {text}")


def e_prior_from(name_or_path: str) -> EPrior:
    """The prior from a fit.json (its E and 95 % CI half-width / 1.96) or a preset law name."""
    from pathlib import Path

    from planner.fit_result import FitResult
    from planner.io import read_json
    from planner.laws import PRESETS

    text = str(name_or_path)
    if text in PRESETS:
        E = PRESETS[text].E
        return EPrior(E, PRESET_REL_SD * E, source=f"preset {text} (sd = {PRESET_REL_SD:.0%} of E)")
    path = Path(text)
    if not path.is_file():
        raise UserError(f"--E-prior-from: {text!r} is neither a preset ({', '.join(PRESETS)}) nor a fit.json file")
    res = FitResult.from_dict(read_json(path, what="fit.json"), where=str(path))
    ci = res.ci.get("E")
    if not ci or ci[0] is None or ci[1] is None or not ci[1] > ci[0]:
        raise UserError(f"{path} has no 95% interval for E, so no SD for the prior; refit it with --bootstrap "
                        "200 or give --E-prior MEAN,SD")
    return EPrior(res.law.E, (ci[1] - ci[0]) / 2 / 1.96, source=f"fit.json {path} (sd = CI half-width / 1.96)")


__all__ = ["EPrior", "parse_e_prior", "e_prior_from", "PRESET_REL_SD"]
