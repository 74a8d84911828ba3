"""The estimator for the alternative forms of :mod:`planner.fit_forms` (``scaleplan fit --form``).

:class:`FormFitter` is a :class:`planner.fit.ChinchillaFitter` with one more setting, ``form``
(kaplan | gadre | farseer), so it shares the row handling (drops, held-out rows), ``clone`` and
the backtest (:func:`planner.backtest.run_backtest` refits it per split like any fitter). What
differs: the law (a :class:`planner.fit_forms.FormLaw`), the solver (multi-start Huber fit with
scipy ``least_squares``) and the bootstrap (one warm-started refit per resample, serial).
Settings that only make sense for the Chinchilla parameterisation (tied or fixed exponents, a
fixed E or a prior on E, compute weights) are refused with a message.

fit.json (:meth:`result`): the form lives in ``meta.form`` (name, source, parameters, intervals,
convergence). A plan allocates with a Chinchilla-form law only, so the top-level E, A, B, alpha,
beta are the free Chinchilla fit of the same rows, fitted alongside: every reader of fit.json keeps
working, and ``warnings`` (printed by the CLI) says that a plan made from this file uses that
Chinchilla fit, not the form. No numerical allocation of the forms is implemented.
"""
from __future__ import annotations

import numpy as np

from planner.errors import UserError
from planner.fit import ChinchillaFitter
from planner.fit_forms import FormLaw, bootstrap_form, fit_form, get_form
from planner.holdout import INTERVAL_BOOTSTRAP

GRAD_TOL_FORM = 1e-6  # scipy least_squares first-order optimality (inf-norm of the gradient)


class FormFitter(ChinchillaFitter):
    """Fit a non-Chinchilla form of L(N, D); results as ChinchillaFitter's, ``law_`` a FormLaw."""

    SETTINGS = ChinchillaFitter.SETTINGS + ("form",)

    def __init__(self, form: str = "kaplan", **settings):
        super().__init__(**settings)
        self.form = form

    def _check_settings(self):
        super()._check_settings()
        get_form(self.form)
        bad = [k for k in ("fix_alpha_eq_beta", "fixed_alpha", "fixed_beta", "fixed_E", "E_prior", "compute_weight")
               if getattr(self, k) not in (None, False, 0, 0.0)]
        if bad:
            raise UserError(f"{', '.join(bad)} apply to the Chinchilla form only; drop them or use --form chinchilla")

    def fit(self, N, D, L) -> "FormFitter":
        self._check_settings()
        N, D, L = self._check_data(N, D, L)
        keep = self._select(N, D, L)
        self.n_input_, self.n_dropped_, self.kept_mask_ = int(N.size), int((~keep).sum()), keep
        N, D, L = N[keep], D[keep], L[keep]
        held = np.zeros(N.size, dtype=bool)
        held[self._heldout_rows(N, D)] = True
        Nf, Df, Lf = N[~held], D[~held], L[~held]
        form = get_form(self.form)
        if Nf.size < len(form.keys) + 2:
            raise UserError(f"only {Nf.size} rows remain for the {form.name} form, which needs at least "
                            f"{len(form.keys) + 2} (its {len(form.keys)} parameters + 2); add runs")
        x, y, logL = np.log(Nf), np.log(Df), np.log(Lf)
        opt = fit_form(form, x, y, logL, float(self.delta))
        self.objective_, self.grad_norm_ = opt.objective, opt.optimality
        self.converged_ = bool(opt.optimality < GRAD_TOL_FORM)
        self.agreement_ = {"n_starts": opt.n_starts, "n_polished": min(opt.n_starts, form.n_polish),
                           "n_starts_at_best": opt.n_at_best}
        self.n_rows_ = int(Nf.size)
        self._fitted_region = (Nf, Df, Lf)
        samples = None
        n_boot = int(self.bootstrap) or (INTERVAL_BOOTSTRAP if self.holdout_top_compute else 0)
        if n_boot:
            samples = bootstrap_form(form, x, y, logL, opt.theta, float(self.delta), n_boot, int(self.seed),
                                     progress=bool(self.progress))
        self.bootstrap_converged_frac_ = None
        law = FormLaw(form, opt.theta, samples=samples, seed=int(self.seed))
        law.residuals = logL - np.log(law.predict(Nf, Df))
        self.law_ = law
        self.ci_ = {} if samples is None else {
            k: [float(v) for v in np.percentile(samples[:, i], [2.5, 97.5])] for i, k in enumerate(form.keys)}
        self.warnings_ = [] if self.converged_ else [
            f"{form.name} fit not converged: first-order optimality {opt.optimality:.2e} (need < {GRAD_TOL_FORM:g})"]
        self.holdout_ = self._holdout(N[held], D[held], L[held]) if held.any() else None
        return self

    @property
    def params_(self) -> dict[str, float]:
        self._check_fitted()
        return self.law_.params

    def _meta(self):
        return {**super()._meta(), "form": self.form}

    def result(self, meta: dict | None = None):
        """fit.json: the form in ``meta.form``; the top-level E, A, B, alpha, beta are a Chinchilla fit
        of the same rows (module docstring), so a plan never mistakes the form for a Chinchilla law."""
        self._check_fitted()
        Nf, Df, Lf = self._fitted_region
        base = ChinchillaFitter(**{k: getattr(self, k) for k in ChinchillaFitter.SETTINGS
                                   if k not in ("holdout_top_compute", "bootstrap")}).fit(Nf, Df, Lf)
        res = base.result(meta=meta)
        res.meta["form"] = {**self.law_.to_dict(), "ci": self.ci_, "objective": self.objective_,
                            "converged": self.converged_, "optimality": self.grad_norm_,
                            "n_bootstrap": 0 if self.law_.samples is None else int(self.law_.samples.shape[0]),
                            "note": "the top-level E, A, B, alpha, beta are the free Chinchilla fit of the same "
                                    "rows, kept for readers; the selected law is this form"}
        note = (f"the selected law is the {self.form} form (meta.form); the top-level E, A, B, alpha, beta that "
                "`scaleplan plan` reads are the free Chinchilla fit of the same rows, not the form")
        res.warnings = [note, *self.warnings_, *res.warnings]
        res.holdout = self.holdout_
        return res


def make_fitter(form: str, **settings) -> ChinchillaFitter:
    """ChinchillaFitter for ``form == "chinchilla"``, else a FormFitter."""
    if form in (None, "chinchilla"):
        return ChinchillaFitter(**settings)
    return FormFitter(form=form, **settings)


__all__ = ["FormFitter", "make_fitter", "GRAD_TOL_FORM"]
