"""Alternative functional forms of L(N, D), fitted like the Chinchilla law and judged by the same backtest.

Every form is fitted by the same method as :mod:`planner.fit` (Hoffmann et al. 2022, App. D.2):
the summed Huber loss (delta 1e-3) of log residuals log L_pred - log L, minimised from many
starts. Here the starts are a fixed grid (seeded random points for Farseer's 9 parameters), all
evaluated at once; the best :data:`N_POLISH` distinct ones are refined with scipy's
``least_squares(loss="huber", f_scale=delta)``, whose cost 1/2 sum f^2 rho((r/f)^2) is exactly
the summed Huber loss. Conventions: N parameters, D tokens, L nats, C = 6 N D, M = D / N.

The forms (``theta`` is what the optimiser sees; ``params`` what fit.json records):

* ``kaplan`` -- Kaplan et al. 2020 ("Scaling Laws for Neural Language Models", arXiv:2001.08361)
  eq. (1.5) / (4.1): L = [(N_c / N)^(alpha_N / alpha_D) + D_c / D]^alpha_D; 4 parameters
  (log N_c, log D_c, alpha_N, alpha_D). No irreducible term: L -> 0 as N, D -> infinity. Their
  fitted constants (Table 2): alpha_N 0.076, alpha_D 0.103, N_c 6.4e13, D_c 1.8e13 (N
  non-embedding parameters, D tokens, loss in nats).
* ``gadre`` -- Gadre et al. 2024 ("Language models scale reliably with over-training and on
  downstream tasks", arXiv:2403.08540) §2.1, eq. (4): L(C, M) = E + (a M^eta + b M^-eta) C^-eta,
  4 parameters (log E, log a, log b, eta). It is Chinchilla's form with alpha = beta = 2 eta,
  rewritten in compute and tokens per parameter (a = A 6^eta, b = B 6^eta), so it predicts
  exactly what ``--alpha-eq-beta`` predicts; it is here because the issue asks for it by name.
* ``farseer`` -- Li et al. 2025 ("Farseer: A Refined Scaling Law in Large Language Models",
  arXiv:2506.10972) §3: the loss surface L = E + U(N) + B(N) D^(-A(N)) (the data term and the
  N x D interaction modelled together as a power law in D whose coefficient and exponent depend on
  N), each N-dependence a stretched exponential: L = exp(a3 N^g3 + b3) + exp(a2 N^g2 + b2)
  D^(-exp(a1 N^g1 + b1)), 9 parameters. The decomposition is the paper's; the exact
  parameterisation of the three N-dependences is as we read it (the paper's text was not
  retrievable here: check it before relying on the constants). N and D enter in units of 1e9 so
  that N^g stays O(1) over the fitted range.

A plan needs a Chinchilla-form law (closed-form allocation, planner.scaling_law): fit.json of a
non-Chinchilla form records the form and its parameters in ``meta.form`` and keeps a Chinchilla fit
of the same rows at the top level, with a warning that a plan uses that one
(planner/fit_form_fitter.py); ``scaleplan fit --budget`` with a form is refused.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from planner.errors import UserError

N_POLISH = 6
UNIT = 1e9  # Farseer: N, D in billions


def _lse(*terms):
    return np.logaddexp.reduce(np.stack(np.broadcast_arrays(*terms)), axis=0)


def _kaplan(th, x, y):
    lnc, ldc, an, ad = (th[..., i:i + 1] for i in range(4))
    return ad * _lse((an / ad) * (lnc - x), ldc - y)


def _gadre(th, x, y):
    e, la, lb, eta = (th[..., i:i + 1] for i in range(4))
    logc, logm = math.log(6.0) + x + y, y - x
    return _lse(e, la + eta * logm - eta * logc, lb - eta * logm - eta * logc)


def _farseer(th, x, y):
    a1, b1, g1, a2, b2, g2, a3, b3, g3 = (th[..., i:i + 1] for i in range(9))
    xn, yn = x - math.log(UNIT), y - math.log(UNIT)
    floor = a3 * np.exp(g3 * xn) + b3
    data = a2 * np.exp(g2 * xn) + b2 - np.exp(a1 * np.exp(g1 * xn) + b1) * yn
    return _lse(floor, data)


def _grid(*axes) -> np.ndarray:
    return np.array(list(itertools.product(*axes)), dtype=float)


def _farseer_starts() -> np.ndarray:
    rng = np.random.default_rng(0)
    n = 400
    lo = np.array([-2.0, -3.0, -0.5, -2.0, -1.0, -0.5, -1.0, -0.5, -0.5])
    hi = np.array([2.0, 0.0, 0.5, 2.0, 3.0, 0.5, 1.0, 1.5, 0.5])
    return lo + (hi - lo) * rng.random((n, 9))


@dataclass(frozen=True)
class Form:
    """A functional form: log-loss ``log_predict(theta, log N, log D)`` and its start grid."""

    name: str
    keys: tuple[str, ...]
    log_predict: Callable
    starts: Callable[[], np.ndarray]
    to_params: Callable[[np.ndarray], dict]
    source: str
    n_polish: int = N_POLISH


FORMS: dict[str, Form] = {
    "kaplan": Form("kaplan", ("log_Nc", "log_Dc", "alpha_N", "alpha_D"), _kaplan,
                   lambda: _grid(np.log([1e10, 1e13, 1e16]), np.log([1e10, 1e13, 1e16]), [0.05, 0.1, 0.3],
                                 [0.05, 0.1, 0.3]),
                   lambda t: {"N_c": math.exp(t[0]), "D_c": math.exp(t[1]), "alpha_N": float(t[2]),
                              "alpha_D": float(t[3])},
                   "Kaplan et al. 2020 (arXiv:2001.08361) eq. (1.5)"),
    "gadre": Form("gadre", ("log_E", "log_a", "log_b", "eta"), _gadre,
                  lambda: _grid([-1.0, 0.0, 0.5, 1.0], [0.0, 5.0, 10.0, 15.0], [0.0, 5.0, 10.0, 15.0],
                                [0.05, 0.1, 0.2, 0.4]),
                  lambda t: {"E": math.exp(t[0]), "a": math.exp(t[1]), "b": math.exp(t[2]), "eta": float(t[3])},
                  "Gadre et al. 2024 (arXiv:2403.08540) Sec. 2.1 eq. (4)"),
    "farseer": Form("farseer", ("a1", "b1", "g1", "a2", "b2", "g2", "a3", "b3", "g3"), _farseer, _farseer_starts,
                    lambda t: dict(zip(("a1", "b1", "g1", "a2", "b2", "g2", "a3", "b3", "g3"), map(float, t))),
                    "Li et al. 2025 (arXiv:2506.10972) Sec. 3, N and D in units of 1e9", n_polish=3),
}


def get_form(name: str) -> Form:
    if name not in FORMS:
        raise UserError(f"unknown form {name!r}; use chinchilla or one of {', '.join(FORMS)}")
    return FORMS[name]


def huber(r: np.ndarray, delta: float) -> np.ndarray:
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def objective(form: Form, theta: np.ndarray, x, y, logL, delta: float) -> np.ndarray:
    """Summed Huber loss of log residuals for each row of ``theta`` (S, p); inf where not finite."""
    with np.errstate(all="ignore"):
        r = form.log_predict(np.atleast_2d(theta), x, y) - logL
        f = huber(r, delta).sum(axis=-1)
    return np.where(np.isfinite(f), f, np.inf)


def _refine(form: Form, theta0, x, y, logL, delta: float, max_nfev: int = 3000):
    from scipy.optimize import least_squares

    def res(th):
        with np.errstate(all="ignore"):
            r = form.log_predict(th[None, :], x, y)[0] - logL
        return np.where(np.isfinite(r), r, 1e3)

    with np.errstate(all="ignore"):
        return least_squares(res, theta0, loss="huber", f_scale=delta, method="trf", x_scale="jac",
                             xtol=1e-12, ftol=1e-14, gtol=1e-12, max_nfev=max_nfev)


@dataclass
class FormFit:
    """The best of the refined starts: theta, objective, scipy's first-order optimality, #starts."""

    theta: np.ndarray
    objective: float
    optimality: float
    n_starts: int
    n_at_best: int = 1  # refined starts that reached the best objective to a relative 1e-6


def fit_form(form: Form, x, y, logL, delta: float, starts: np.ndarray | None = None,
             n_polish: int | None = None) -> FormFit:
    """Multi-start fit of ``form`` on log N = x, log D = y, log L = logL; the best ``n_polish`` starts
    (default the form's: 6, Farseer 3 as each of its refinements costs seconds) are refined."""
    starts = form.starts() if starts is None else np.atleast_2d(starts)
    n_polish = form.n_polish if n_polish is None else int(n_polish)
    f0 = objective(form, starts, x, y, logL, delta)
    order = np.argsort(f0)
    fits = []
    for i in order[:n_polish]:
        if not math.isfinite(f0[i]):
            break
        r = _refine(form, starts[i], x, y, logL, delta)
        fits.append(FormFit(np.asarray(r.x, dtype=float), float(objective(form, r.x, x, y, logL, delta)[0]),
                            float(r.optimality), int(starts.shape[0])))
    if not fits:
        raise UserError(f"the {form.name} form could not be evaluated at any start on these runs; use another form")
    best = min(fits, key=lambda f: f.objective)
    best.n_at_best = sum(f.objective <= best.objective * (1 + 1e-6) + 1e-15 for f in fits)
    return best


@dataclass
class FormLaw:
    """A fitted non-Chinchilla law: ``predict(N, D, interval=None|"parameter"|"prediction")``.

    ``samples`` (k, p) bootstrap thetas; ``residuals`` the fit's log residuals (prediction interval
    = bootstrap law x a resampled residual, as :class:`planner.scaling_law.ScalingLaw` does).
    """

    form: Form
    theta: np.ndarray
    samples: np.ndarray | None = None
    residuals: np.ndarray | None = None
    seed: int = 0
    meta: dict = field(default_factory=dict)

    @property
    def params(self) -> dict:
        return self.form.to_params(self.theta)

    def predict(self, N, D, interval: str | None = None):
        from planner.scaling_law import Prediction

        N, D = np.broadcast_arrays(np.asarray(N, dtype=float), np.asarray(D, dtype=float))
        shape = N.shape
        x, y = np.log(N).reshape(-1), np.log(D).reshape(-1)
        value = np.exp(self.form.log_predict(self.theta[None, :], x, y)[0]).reshape(shape)
        if interval is None:
            return float(value) if value.ndim == 0 else value
        if self.samples is None:
            raise UserError(f"this {self.form.name} fit has no bootstrap samples, so no interval; fit with bootstrap")
        with np.errstate(all="ignore"):
            per = np.exp(self.form.log_predict(self.samples, x, y))  # (k, n)
        per = np.where(np.isfinite(per), per, np.nan)  # a degenerate refit is left out, not propagated
        if interval == "prediction":
            rng = np.random.default_rng(int(self.seed) + 1)
            per = per * np.exp(rng.choice(self.residuals, size=per.shape, replace=True))
        lo, hi = np.nanpercentile(per, [2.5, 97.5], axis=0)
        lo, hi = lo.reshape(shape), hi.reshape(shape)
        if value.ndim == 0:
            value, lo, hi = float(value), float(lo), float(hi)
        return Prediction(value=value, lo=lo, hi=hi, interval=interval)

    def to_dict(self) -> dict:
        return {"form": self.form.name, "source": self.form.source, "params": self.params,
                "theta": {k: float(v) for k, v in zip(self.form.keys, self.theta)}}


#: Function evaluations per bootstrap refit (warm-started at the optimum, it needs few; Farseer's
#: flat directions would otherwise use thousands).
BOOT_MAX_NFEV = 300


def bootstrap_form(form: Form, x, y, logL, theta, delta: float, n_boot: int, seed: int,
                   progress: bool = False) -> np.ndarray:
    """(n_boot, p) refits on rows resampled with replacement, each started at ``theta`` (a tqdm bar
    with ``progress``: Farseer's refits take a fraction of a second each)."""
    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed)
    out = np.empty((n_boot, theta.size))
    for i in tqdm(range(n_boot), desc=f"bootstrap refits ({form.name})", unit="fit", disable=not progress):
        idx = rng.integers(0, x.size, x.size)
        out[i] = _refine(form, theta, x[idx], y[idx], logL[idx], delta, max_nfev=BOOT_MAX_NFEV).x
    return out


__all__ = ["FORMS", "Form", "FormLaw", "FormFit", "fit_form", "get_form", "objective", "bootstrap_form", "huber"]
