"""Choosing a fitting configuration by an inner backtest (``scaleplan fit --select backtest``).

:class:`SelectingFitter` wraps a :class:`planner.fit.ChinchillaFitter` and, on ``fit(N, D, L)``,
scores each candidate configuration (:data:`CANDIDATES`) by an *inner* backtest on those rows
only: for each inner factor k (default 3, 10) it fits the candidate on the rows with
C <= C_max / k (C = 6 N D, C_max the largest of *these* rows) and predicts the others; the score
is the mean over inner splits of the mean |relative error| of their predictions. The candidate with
the lowest score is then fitted on all the rows (with the base fitter's bootstrap) and becomes the
fit. ``planner.backtest.run_backtest`` refits this selector on each outer split, so the selection
inside a split sees only that split's fitted runs: the outer backtest is an honest measure of the
whole procedure, selection included (no peeking at the held-out runs).

Candidates (issue 16 item 3): the free fit; alpha = beta; compute-weighted loss (p = 1,
:class:`ChinchillaFitter`'s ``compute_weight``); the smallest third of the log-compute span
dropped (``min_compute``); the alternative forms of :mod:`planner.fit_forms` (Kaplan 2020, Gadre
2024, Farseer 2025; :data:`FORM_CANDIDATES`); and, when the base fitter carries a prior on E
(:mod:`planner.fit_prior`), the fit with that prior (the other candidates then fit without it).
Each is a function of the rows' compute so it adapts to a split.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from planner.errors import UserError
from planner.holdout import MIN_FIT_ROWS

INNER_FACTORS = (3.0, 10.0)


def _drop_smallest_third(C: np.ndarray) -> dict[str, Any]:
    lo, hi = math.log(float(C.min())), math.log(float(C.max()))
    return {"min_compute": math.exp(lo + (hi - lo) / 3.0) * (1 - 1e-12)}


CANDIDATES: dict[str, Callable[[np.ndarray], dict[str, Any]]] = {
    "free": lambda C: {},
    "alpha=beta": lambda C: {"fix_alpha_eq_beta": True},
    "compute-weighted (p=1)": lambda C: {"compute_weight": 1.0},
    "drop smallest third of log C": _drop_smallest_third,
}
#: The alternative functional forms, as candidates (``"form"`` selects a FormFitter).
FORM_CANDIDATES: dict[str, Callable[[np.ndarray], dict[str, Any]]] = {
    f"form {name}": (lambda C, name=name: {"form": name}) for name in ("kaplan", "gadre", "farseer")}
_CHINCHILLA_ONLY = {"fix_alpha_eq_beta": False, "fixed_alpha": None, "fixed_beta": None, "fixed_E": None,
                    "E_prior": None, "compute_weight": 0.0}


def build(base, settings: dict[str, Any]):
    """``base.clone(**settings)``, or a FormFitter with base's row and solver settings for ``form``."""
    settings = dict(settings)
    form = settings.pop("form", None)
    if form in (None, "chinchilla"):
        return base.clone(**settings)
    from planner.fit_form_fitter import FormFitter

    kw = {k: getattr(base, k) for k in type(base).SETTINGS if k != "form"}
    return FormFitter(form=form, **{**kw, **_CHINCHILLA_ONLY, **settings})


def default_candidates(base) -> dict[str, Callable]:
    """CANDIDATES + FORM_CANDIDATES; with a prior on E in ``base``, those without it plus "E prior"."""
    cands = {**CANDIDATES, **FORM_CANDIDATES}
    if getattr(base, "E_prior", None) is None:
        return cands
    out = {name: (lambda C, s=s: {"E_prior": None, **s(C)}) for name, s in cands.items()}
    out[f"E prior {base.E_prior.mean:g}+-{base.E_prior.sd:g}"] = lambda C: {}
    return out


def inner_score(fitter, settings: Callable, N, D, L, factors=INNER_FACTORS) -> float:
    """Mean over inner splits of the mean |rel error| of a candidate's predictions (inf if no split fits)."""
    C = 6.0 * N * D
    errs = []
    for k in factors:
        fit_rows = C <= C.max() / k
        if fit_rows.sum() < MIN_FIT_ROWS or fit_rows.all():
            continue
        try:
            sub = build(fitter, {"bootstrap": 0, "holdout_top_compute": None, "progress": False, "drop_top_loss": 0,
                                 "min_tokens_per_param": None, "min_compute": None, **settings(C[fit_rows])})
            sub.fit(N[fit_rows], D[fit_rows], L[fit_rows])
        except UserError:  # e.g. too few rows left after the candidate's own dropping
            continue
        pred = sub.law_.predict(N[~fit_rows], D[~fit_rows])
        errs.append(float(np.mean(np.abs(pred / L[~fit_rows] - 1))))
    return float(np.mean(errs)) if errs else math.inf


class SelectingFitter:
    """A fitter that picks its configuration by an inner backtest; the chosen fit is ``fitter_``.

    Exposes what :func:`planner.fit.fit_runs` and :func:`planner.backtest.run_backtest` use
    (``clone``, ``fit``, ``law_``, ``params_``, ``converged_``, ``kept_mask_``, ``result``, ...) by
    delegating to the chosen fit; ``selection_`` records the scores and the choice.
    """

    def __init__(self, base, candidates: dict[str, Callable] | None = None, inner_factors=INNER_FACTORS):
        self.base = base
        self.candidates = dict(default_candidates(base) if candidates is None else candidates)
        self.inner_factors = tuple(inner_factors)

    def clone(self, **overrides) -> "SelectingFitter":
        return type(self)(self.base.clone(**overrides), self.candidates, self.inner_factors)

    @property
    def bootstrap(self):
        return self.base.bootstrap

    @property
    def progress(self):
        return self.base.progress

    def fit(self, N, D, L) -> "SelectingFitter":
        N, D, L = self.base._check_data(N, D, L)
        keep = np.flatnonzero(self.base._select(N, D, L))  # the base's own row dropping first, as a plain fit
        held = self.base._heldout_rows(N[keep], D[keep])  # --holdout-top-compute rows: never seen by the selection
        rows = np.delete(keep, held)
        scores = {name: inner_score(self.base, s, N[rows], D[rows], L[rows], self.inner_factors)
                  for name, s in self.candidates.items()}
        finite = {k: v for k, v in scores.items() if math.isfinite(v)}
        chosen = min(finite, key=finite.get) if finite else next(iter(self.candidates))
        C = 6.0 * N[rows] * D[rows]
        self.fitter_ = build(self.base, self.candidates[chosen](C)).fit(N, D, L)
        self.selection_ = {"method": "inner backtest on the fitted runs only: per candidate, fit on C <= C_max/k "
                                     "and score the mean |rel error| of the rest, averaged over k",
                           "inner_factors": list(self.inner_factors), "scores": scores, "chosen": chosen,
                           "chosen_settings": self.candidates[chosen](C)}
        return self

    def result(self, meta: dict | None = None):
        return self.fitter_.result(meta={**(meta or {}), "select": self.selection_})

    def __getattr__(self, name):  # law_, params_, converged_, kept_mask_, warnings_, ... of the chosen fit
        if name in ("fitter_", "base", "selection_") or "fitter_" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.fitter_, name)


__all__ = ["SelectingFitter", "CANDIDATES", "FORM_CANDIDATES", "INNER_FACTORS", "inner_score", "build",
           "default_candidates"]
