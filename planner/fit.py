"""Chinchilla Approach 3: fit L(N, D) = E + A / N^alpha + B / D^beta with honest uncertainty.

The estimator, scikit-learn style: settings in the constructor, ``fit(N, D, L)`` returns self
and sets trailing-underscore results, above all ``law_``, a :class:`planner.scaling_law.ScalingLaw`
carrying its bootstrap samples and the fit's log residuals (so it gives parameter and
prediction intervals). ``result()`` packs the fit as a :class:`planner.fit_result.FitResult`,
the one writer of fit.json.

Method (Hoffmann et al. 2022, "Training Compute-Optimal Large Language Models", App. D.2): Huber
loss (delta = 1e-3) of log-loss residuals, minimised from every point of the grid alpha, beta in
{0, 0.5, ..., 2}, e in {-1, -0.5, ..., 1}, a, b in {0, 5, ..., 25} (4,500 starts), keeping the
best; solved to tight tolerance by the batched Newton solver of :mod:`planner.fit_solver`.

Convergence is shown, not assumed: ``grad_norm_`` is the gradient norm of the objective at the
optimum in the (a, b, e, alpha, beta) parameterisation, ``agreement_`` gives how many starts
reached an objective within a relative 1e-6 of the best and the spread of alpha, beta among them.

Conventions: N parameters (whichever count the caller fits on), D tokens, L loss in nats; the
held-out option ranks rows by C = 6 N D. ``bootstrap`` resamples rows with replacement
(seeded by ``seed``); intervals are 95 % percentile intervals.

Fitting choices for extrapolation (issue 16 item 3; each judged by :mod:`planner.backtest`):
``min_compute`` drops the runs with C = 6 N D below it (small runs can bend the law; Choshen
et al. 2024, "A Hitchhiker's Guide to Scaling Law Estimation", discuss which runs to fit);
``compute_weight`` p weights each run's Huber term by (C / C_max)^p, normalised to mean 1
(OLMo-core's ladder fits weight runs by compute); ``fixed_E`` holds the irreducible loss at a
given value (a published E or another fit's: Marin found a freely fitted E too optimistic and
pinned it); ``E_prior`` (a :class:`planner.fit_prior.EPrior`) is the soft version, a Gaussian
penalty on log E scaled to the fit's likelihood (planner/fit_prior.py says how). Other forms of
L(N, D) are :mod:`planner.fit_forms` (fitted by :mod:`planner.fit_form_fitter`), joint fits over
data sets :mod:`planner.fit_groups`; :mod:`planner.fit_select` chooses among all of these by an
inner backtest.
"""
from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np

from planner.errors import UserError
from planner.fit_result import FitResult
from planner.fit_solver import (HOFFMANN_GRID, SMALL_GRID, ParamMap, bootstrap_refits, grid_starts,
                                solve_multistart)
from planner.backtest import run_backtest
from planner.holdout import INTERVAL_BOOTSTRAP, HoldoutReport, evaluate_heldout, select_heldout
from planner.scaling_law import PARAM_NAMES, ScalingLaw, percentile_interval

PARAM_KEYS = PARAM_NAMES
GRAD_TOL = 1e-8  # converged_ needs the gradient norm at the optimum below this
HOLDOUT_BOOTSTRAP = INTERVAL_BOOTSTRAP  # resamples behind the held-out prediction intervals when bootstrap=0
LAW_SOURCE = "scaleplan fit (Chinchilla Approach 3)"


class ChinchillaFitter:
    """Approach-3 fitter, scikit-learn style: settings in the constructor, results after ``fit``.

    Results (set by :meth:`fit`): ``law_`` (ScalingLaw with ``samples`` and ``residuals``);
    ``params_`` (its E, A, B, alpha, beta as a dict); ``objective_`` (summed Huber loss at the
    optimum); ``grad_norm_``; ``converged_``; ``agreement_``; ``ci_`` (95 % percentile intervals
    per parameter, from the bootstrap); ``bootstrap_converged_frac_``; ``warnings_``;
    ``n_rows_``, ``n_input_``, ``n_dropped_``, ``kept_mask_``; ``holdout_`` (a HoldoutReport
    with ``holdout_top_compute``, else None).
    """

    def __init__(self, delta: float = 1e-3, grid: str | dict = "hoffmann", fix_alpha_eq_beta: bool = False,
                 fixed_alpha: float | None = None, fixed_beta: float | None = None, drop_top_loss: int = 0,
                 min_tokens_per_param: float | None = None, bootstrap: int = 0, seed: int = 0, n_jobs: int = 2,
                 holdout_top_compute: float | None = None, progress: bool = False, min_compute: float | None = None,
                 compute_weight: float = 0.0, fixed_E: float | None = None, E_prior=None):
        self.delta = delta
        self.grid = grid
        self.fix_alpha_eq_beta = fix_alpha_eq_beta
        self.fixed_alpha = fixed_alpha
        self.fixed_beta = fixed_beta
        self.drop_top_loss = drop_top_loss
        self.min_tokens_per_param = min_tokens_per_param
        self.bootstrap = bootstrap
        self.seed = seed
        self.n_jobs = n_jobs
        self.holdout_top_compute = holdout_top_compute
        self.progress = progress
        self.min_compute = min_compute
        self.compute_weight = compute_weight
        self.fixed_E = fixed_E
        self.E_prior = E_prior  # a planner.fit_prior.EPrior (Gaussian on log E) or None

    SETTINGS = ("delta", "grid", "fix_alpha_eq_beta", "fixed_alpha", "fixed_beta", "drop_top_loss",
                "min_tokens_per_param", "bootstrap", "seed", "n_jobs", "holdout_top_compute", "progress",
                "min_compute", "compute_weight", "fixed_E", "E_prior")

    def clone(self, **overrides) -> "ChinchillaFitter":
        """An unfitted fitter with these settings, ``overrides`` replacing some (the backtest's refits)."""
        unknown = set(overrides) - set(self.SETTINGS)
        if unknown:
            raise TypeError(f"unknown fitter settings: {sorted(unknown)}")
        return type(self)(**{**{k: getattr(self, k) for k in self.SETTINGS}, **overrides})

    # ---------------------------------------------------------------- input handling
    def _check_settings(self):
        if not (isinstance(self.delta, (int, float)) and math.isfinite(self.delta) and self.delta > 0):
            raise UserError(f"delta must be a positive number, got {self.delta!r}")
        if int(self.drop_top_loss) < 0:
            raise UserError(f"drop_top_loss must be >= 0, got {self.drop_top_loss}")
        if int(self.bootstrap) < 0:
            raise UserError(f"bootstrap must be >= 0 resamples, got {self.bootstrap}")
        if int(self.n_jobs) < 1:
            raise UserError(f"n_jobs must be >= 1, got {self.n_jobs}")
        if self.holdout_top_compute is not None and not (0 < self.holdout_top_compute < 1):
            raise UserError(f"holdout_top_compute is a fraction in (0, 1), got {self.holdout_top_compute}")
        if not (isinstance(self.compute_weight, (int, float)) and 0 <= self.compute_weight <= 2):
            raise UserError(f"compute_weight is a power p in [0, 2] (weights (C / C_max)^p), got {self.compute_weight!r}")
        for name in ("fixed_alpha", "fixed_beta", "fixed_E", "min_compute"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise UserError(f"{name} must be a positive number, got {v!r}")
        if self.E_prior is not None and self.fixed_E is not None:
            raise UserError("give either a fixed E or a prior on E, not both (a fixed E is the prior with sd 0)")

    @staticmethod
    def _check_data(N, D, L) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        N, D, L = (np.asarray(v, dtype=float).reshape(-1) for v in (N, D, L))
        if not (N.size == D.size == L.size):
            raise UserError(f"N, D, L must have the same length, got {N.size}, {D.size}, {L.size}")
        for name, v in (("N", N), ("D", D), ("loss", L)):
            bad = ~np.isfinite(v) | (v <= 0)
            if bad.any():
                rows = ", ".join(str(i + 1) for i in np.flatnonzero(bad)[:8])
                raise UserError(f"{name} must be finite and > 0; bad rows: {rows}; fix or remove them")
        return N, D, L

    def _select(self, N, D, L):
        """Apply drop_top_loss / min_tokens_per_param; returns the kept mask."""
        keep = np.ones(N.size, dtype=bool)
        if self.min_tokens_per_param is not None:
            keep &= D / N >= float(self.min_tokens_per_param)
        if self.min_compute is not None:
            keep &= 6.0 * N * D >= float(self.min_compute)
        k = int(self.drop_top_loss)
        if k:
            order = np.argsort(-L, kind="stable")
            keep[order[:k]] = False
        return keep

    def _heldout_rows(self, N, D) -> np.ndarray:
        """Indices of the ``holdout_top_compute`` fraction of highest-compute rows (C = 6 N D)."""
        if not self.holdout_top_compute:
            return np.zeros(0, dtype=int)
        return select_heldout(6.0 * N * D, max(1, int(round(self.holdout_top_compute * N.size))))

    # ---------------------------------------------------------------- the fit
    def fit(self, N, D, L) -> "ChinchillaFitter":
        """Fit on arrays of parameters N, tokens D and losses L (nats). Returns self."""
        self._check_settings()
        N, D, L = self._check_data(N, D, L)
        keep = self._select(N, D, L)
        self.n_input_ = int(N.size)
        self.n_dropped_ = int((~keep).sum())
        self.kept_mask_ = keep
        N, D, L = N[keep], D[keep], L[keep]
        P = ParamMap.make(self.fix_alpha_eq_beta, self.fixed_alpha, self.fixed_beta,
                          None if self.fixed_E is None else math.log(self.fixed_E))
        held = np.zeros(N.size, dtype=bool)
        held[self._heldout_rows(N, D)] = True
        Nf, Df, Lf = N[~held], D[~held], L[~held]
        if Nf.size < P.M.shape[1] + 2:
            raise UserError(f"only {Nf.size} rows remain after dropping/holding out, the fit needs at least "
                            f"{P.M.shape[1] + 2} (free parameters + 2); use fewer drops or add runs")
        if self.fixed_E is not None and self.fixed_E >= Lf.min():
            raise UserError(f"fixed_E = {self.fixed_E:g} is not below the lowest fitted loss {Lf.min():.4g}; "
                            "E is the loss floor: give a smaller value")
        x, y, logL = np.log(Nf), np.log(Df), np.log(Lf)
        w = self._weights(Nf, Df)
        starts = grid_starts(self.grid)
        if P.M.shape[1] < 5:  # tied / fixed exponents or E: project the starts onto the constraint
            starts = np.unique(P.theta(P.phi(starts)), axis=0)
        opt = solve_multistart(x, y, logL, starts, P, self.delta, weights=w)
        if self.E_prior is not None:  # penalty scaled by the free fit's residuals (planner/fit_prior.py)
            free = ScalingLaw(*np.exp(opt.theta[[2, 0, 1]]), *opt.theta[3:5])
            P.prior = self.E_prior.penalty(logL - np.log(free.predict(Nf, Df)), self.delta)
            opt = solve_multistart(x, y, logL, np.vstack([starts, opt.theta[None, :]]), P, self.delta, weights=w)
        self.objective_, self.grad_norm_, self.agreement_ = opt.objective, opt.grad_norm, opt.agreement
        spread = max(opt.agreement["alpha_spread"], opt.agreement["beta_spread"])
        self.converged_ = bool(opt.grad_norm < GRAD_TOL and (opt.agreement["n_starts_at_best"] < 2 or spread < 1e-4))
        self.n_rows_ = int(Nf.size)
        self._fitted_region = (Nf, Df, Lf)
        samples, self.bootstrap_converged_frac_ = None, None
        if self.bootstrap or self.holdout_top_compute:
            samples, self.bootstrap_converged_frac_ = bootstrap_refits(
                x, y, logL, P, opt.theta, self.delta, int(self.bootstrap) or HOLDOUT_BOOTSTRAP, seed=self.seed,
                n_jobs=self.n_jobs, progress=self.progress, weights=w)
        self.law_ = self._make_law(opt.theta, samples, logL, Nf, Df)
        self.ci_ = {} if samples is None else {k: percentile_interval(samples[:, i]) for i, k in enumerate(PARAM_KEYS)}
        self.warnings_ = self._warnings(Nf, Df)
        self.law_.meta = {**self._meta(), "warnings": list(self.warnings_)}
        self.holdout_ = self._holdout(N[held], D[held], L[held]) if held.any() else None
        return self

    def _weights(self, N, D) -> np.ndarray | None:
        """Row weights (C / C_max)^p normalised to mean 1 (``compute_weight`` p), None when p = 0."""
        if not self.compute_weight:
            return None
        w = (6.0 * N * D / np.max(6.0 * N * D)) ** float(self.compute_weight)
        return w / w.mean()

    def _make_law(self, theta, samples, logL, N, D) -> ScalingLaw:
        a, b, e, alpha, beta = (float(v) for v in theta)
        law = ScalingLaw(E=math.exp(e), A=math.exp(a), B=math.exp(b), alpha=alpha, beta=beta, name="fit",
                         source=LAW_SOURCE, samples=samples, seed=int(self.seed))
        law.residuals = logL - np.log(law.predict(N, D))
        return law

    def _holdout(self, N, D, L) -> HoldoutReport:
        Nf, Df, _ = self._fitted_region
        report = evaluate_heldout(self.law_, N, D, L, 6.0 * N * D, n_fit=self.n_rows_,
                                  max_fitted_flops=float(np.max(6.0 * Nf * Df)))
        report.method = ("fit on all rows but the held-out highest-compute ones (C = 6 N D); 95% prediction "
                         "interval = bootstrap law x resampled residual")
        return report

    # ---------------------------------------------------------------- diagnostics
    def _warnings(self, N, D) -> list[str]:
        out = []
        if np.log10(N.max() / N.min()) < 1:
            out.append(f"N spans under one decade ({N.min():.3g}..{N.max():.3g}): alpha is poorly identified; "
                       "add model sizes or fix the exponents (--alpha-eq-beta)")
        if np.log10(D.max() / D.min()) < 1:
            out.append(f"D spans under one decade ({D.min():.3g}..{D.max():.3g}): beta is poorly identified; "
                       "add token budgets or fix the exponents")
        starts = grid_starts(self.grid)
        lo, hi = starts[:, 3:5].min(), starts[:, 3:5].max()
        for key in ("alpha", "beta"):
            v = getattr(self.law_, key)
            if v <= max(lo, 0.0) + 1e-6 or v >= hi - 1e-6:
                out.append(f"{key} = {v:.4g} is at the edge of the start grid [{lo}, {hi}]: the law is not "
                           "identified by these runs")
        lowest = float(self._fitted_region[2].min())
        if self.fixed_E is None and self.law_.E < 0.05 * lowest:
            out.append(f"E = {self.law_.E:.3g} is near 0 (the lowest measured loss is {lowest:.3g}): "
                       "these runs do not reach the loss floor, so the irreducible loss is not identified and "
                       "extrapolations will underestimate loss; add larger or longer runs before planning with it")
        if not self.converged_:
            out.append(f"optimiser not converged: gradient norm {self.grad_norm_:.2e} (need < {GRAD_TOL:g}), "
                       f"alpha/beta spread among best starts {self.agreement_['alpha_spread']:.2e}/"
                       f"{self.agreement_['beta_spread']:.2e}")
        if self.bootstrap_converged_frac_ is not None and self.bootstrap_converged_frac_ < 0.95:
            out.append(f"only {self.bootstrap_converged_frac_:.0%} of bootstrap refits converged (grad < 1e-6)")
        return out

    def _meta(self) -> dict[str, Any]:
        """Settings and the fitted region (the planner warns when it extrapolates far beyond it)."""
        Nf, Df, _ = self._fitted_region
        return {"delta": self.delta, "grid": self.grid if isinstance(self.grid, str) else
                {k: list(map(float, v)) for k, v in self.grid.items()},
                "fix_alpha_eq_beta": self.fix_alpha_eq_beta, "fixed_alpha": self.fixed_alpha,
                "fixed_beta": self.fixed_beta, "drop_top_loss": self.drop_top_loss,
                "min_tokens_per_param": self.min_tokens_per_param, "seed": self.seed,
                **{k: getattr(self, k) for k in ("min_compute", "compute_weight", "fixed_E")
                   if getattr(self, k) not in (None, 0, 0.0)},
                **({"E_prior": self.E_prior.to_dict()} if self.E_prior is not None else {}),
                "loss_units": "nats", "flops_per_token_per_param": 6.0,
                "n_range": [float(Nf.min()), float(Nf.max())], "d_range": [float(Df.min()), float(Df.max())]}

    # ---------------------------------------------------------------- results
    def _check_fitted(self):
        if not hasattr(self, "law_"):
            raise UserError("this fitter has not been fitted yet; call fit(N, D, L) first")

    @property
    def params_(self) -> dict[str, float]:
        """The fitted E, A, B, alpha, beta (those of ``law_``)."""
        self._check_fitted()
        return {k: getattr(self.law_, k) for k in PARAM_KEYS}

    def predict(self, N, D, interval: str | None = None):
        """Loss (nats) predicted at parameters N and tokens D: ``law_.predict`` (broadcast)."""
        self._check_fitted()
        return self.law_.predict(N, D, interval=interval)

    def result(self, meta: dict | None = None) -> FitResult:
        """The fit as a :class:`FitResult` (fit.json); ``meta`` (provenance) is added to the fit's own."""
        self._check_fitted()
        return FitResult(law=self.law_, ci=self.ci_, n_rows=self.n_rows_, n_dropped=self.n_dropped_,
                         objective=self.objective_, converged=self.converged_, grad_norm=self.grad_norm_,
                         agreement=self.agreement_, bootstrap_converged_frac=self.bootstrap_converged_frac_,
                         warnings=list(self.warnings_), meta={**self._meta(), **(meta or {})}, holdout=self.holdout_)


def runs_table_meta(runs, *, n_col: str, loss_col: str, d_col: str | None, flops_col: str | None,
                    command: str) -> dict[str, Any]:
    """fit.json's provenance of a fitted runs table: path, SHA-256, columns, version, command."""
    from planner import __version__

    try:
        digest = hashlib.sha256(Path(runs).read_bytes()).hexdigest()
    except OSError:
        digest = None
    return {"source": str(runs), "data_sha256": digest, "n_col": n_col, "loss_col": loss_col, "d_col": d_col,
            "flops_col": flops_col, "d_derived": d_col is None, "scaleplan_version": __version__,
            "command": command}


def fit_runs(fitter: ChinchillaFitter, runs, meta: dict[str, Any], *, backtest_factors=None,
             backtest_jobs: int = 1) -> FitResult:
    """Fit the rows of a loaded runs table (:func:`planner.runs.load_runs`: columns N, D, C, loss).

    ``n_dropped`` counts both the rows the table dropped for their status and those the fitter's
    options dropped; both counts are also kept in ``meta``. With ``backtest_factors`` (e.g.
    :data:`planner.backtest.DEFAULT_FACTORS`) the fit also carries a backtest over the kept rows
    (:func:`planner.backtest.run_backtest`; the fit itself is unchanged by it).
    """
    fitter.fit(runs["N"].to_numpy(), runs["D"].to_numpy(), runs["loss"].to_numpy())
    n_status = int(runs.attrs.get("n_dropped_status", 0))
    result = fitter.result(meta={**meta, "n_dropped_status": n_status, "n_dropped_by_options": fitter.n_dropped_})
    result.n_dropped = fitter.n_dropped_ + n_status
    if backtest_factors:
        kept = runs[fitter.kept_mask_]
        Nf, Df, _ = fitter._fitted_region
        result.backtest = run_backtest(fitter, kept["N"], kept["D"], kept["loss"], kept["C"], backtest_factors,
                                       law_max_fitted_flops=float(np.max(6.0 * Nf * Df)), n_jobs=backtest_jobs,
                                       progress=fitter.progress,
                                       run_ids=kept["run_id"] if "run_id" in kept.columns else None)
    return result


__all__ = ["ChinchillaFitter", "fit_runs", "runs_table_meta", "HOFFMANN_GRID", "SMALL_GRID", "grid_starts", "PARAM_KEYS", "GRAD_TOL"]
