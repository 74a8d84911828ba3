"""One joint Approach-3 fit over several data sets with some parameters shared (``scaleplan fit --group-by``).

Model: for each group g (a data set, e.g. Porian et al. 2024's RefinedWeb and OpenWebText2 runs)

    L_g(N, D) = E_g + A_g / N^alpha_g + B_g / D^beta_g

where the parameters named in ``share`` (any of alpha, beta, E) take one value for all groups and
the others are per group. Objective: the sum over groups of the Huber loss of log residuals
(delta as the fitter's, Hoffmann et al. 2022 App. D.2), each group's term being exactly
:func:`planner.fit_solver._objective`; minimised with scipy L-BFGS-B at tight tolerance from the
separate fits' optima (each group's shared values, and their mean, as starts). With nothing shared
the objective separates and the joint fit equals the separate fits.

The fitter predicts one *target* group (``target``); the other groups are auxiliary rows held by the
fitter. Honesty in the backtest: the auxiliary groups contribute only their runs with C = 6 N D up
to the largest compute of the target rows being fitted, so a backtest split (or the selector's
inner split) never sees another data set's larger runs either. The CLI's fit does the same, so the
law written is the one the backtest judged.

Intervals: bootstrap resamples rows with replacement within each group and refits jointly,
warm-started at the optimum. fit.json: the target group's law at the top level (all readers keep
working) and ``meta.groups`` with every group's parameters and row count, ``meta.share`` and
``meta.target_group``.
"""
from __future__ import annotations

import math

import numpy as np

from planner.errors import UserError
from planner.fit_result import FitResult
from planner.fit_solver import _objective, _to_centred, _to_natural
from planner.scaling_law import PARAM_NAMES, ScalingLaw, percentile_interval

SHAREABLE = {"alpha": 3, "beta": 4, "E": 2}  # name -> index in theta = (a, b, e, alpha, beta)


def parse_share(text: str) -> tuple[str, ...]:
    names = tuple(t.strip() for t in str(text).split(",") if t.strip())
    bad = [n for n in names if n not in SHAREABLE]
    if bad or len(set(names)) != len(names):
        raise UserError(f"--share takes a comma list of {', '.join(SHAREABLE)} (e.g. alpha,beta), got {text!r}")
    return names


def _layout(n_groups: int, share: tuple[str, ...]) -> np.ndarray:
    """(G, 5) indices of each group's theta in the joint vector: shared entries first, then per group."""
    shared = sorted(SHAREABLE[s] for s in share)
    idx = np.empty((n_groups, 5), dtype=int)
    for j, i in enumerate(shared):
        idx[:, i] = j
    k = len(shared)
    for g in range(n_groups):
        for i in range(5):
            if i not in shared:
                idx[g, i] = k
                k += 1
    return idx


def _joint(v, idx, data, delta, weights):
    """Joint objective and gradient at the vector v (centred coordinates)."""
    F, G = 0.0, np.zeros_like(v)
    for g, (x, y, logL) in enumerate(data):
        f, grad, _ = _objective(v[idx[g]][None, :], x, y, logL, weights[g], delta, order=1)
        F += float(f[0])
        np.add.at(G, idx[g], grad[0])
    return F, G


def solve_joint(data, idx, starts, delta, weights=None):
    """L-BFGS-B from each start (centred joint vectors); returns (v, objective, grad norm, number of
    starts that reached the best objective to a relative 1e-6)."""
    from scipy.optimize import minimize

    weights = weights or [np.ones_like(d[0]) for d in data]
    runs = []
    for v0 in starts:
        with np.errstate(all="ignore"):
            r = minimize(_joint, v0, args=(idx, data, delta, weights), jac=True, method="L-BFGS-B",
                         options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 20000, "maxcor": 30})
        runs.append((r.x, float(r.fun)))
    v, f = min(runs, key=lambda t: t[1])
    n_at_best = sum(fr <= f * (1 + 1e-6) + 1e-15 for _, fr in runs)
    return v, f, float(np.linalg.norm(_joint(v, idx, data, delta, weights)[1])), n_at_best


class GroupFitter:
    """Joint fit of a target group with auxiliary groups sharing ``share``; results like ChinchillaFitter's."""

    def __init__(self, base, aux: dict, share=("alpha", "beta"), target: str = "target"):
        self.base = base
        self.aux = {str(k): tuple(np.asarray(a, dtype=float).reshape(-1) for a in v) for k, v in aux.items()}
        self.share = tuple(share)
        self.target = str(target)

    def clone(self, **overrides) -> "GroupFitter":
        return type(self)(self.base.clone(**overrides), self.aux, self.share, self.target)

    bootstrap = property(lambda self: self.base.bootstrap)
    progress = property(lambda self: self.base.progress)

    def _groups(self, N, D, L):
        """[(name, N, D, L)]: the target rows, then each auxiliary group cut at the target's max compute."""
        cmax = float(np.max(6.0 * N * D))
        out = [(self.target, N, D, L)]
        for name, (n, d, l) in self.aux.items():
            n, d, l = self.base._check_data(n, d, l)
            keep = self.base._select(n, d, l) & (6.0 * n * d <= cmax)
            if keep.sum() >= 3:
                out.append((name, n[keep], d[keep], l[keep]))
        return out

    def fit(self, N, D, L) -> "GroupFitter":
        base = self.base
        base._check_settings()
        if base.holdout_top_compute or base.fix_alpha_eq_beta or base.fixed_alpha or base.fixed_beta \
                or base.fixed_E or base.E_prior is not None or base.compute_weight:
            raise UserError("--group-by fits with the plain settings only: drop --holdout-top-compute, "
                            "--alpha-eq-beta, --fixed-*, --E-prior* and --compute-weight")
        N, D, L = base._check_data(N, D, L)
        keep = base._select(N, D, L)
        self.n_input_, self.n_dropped_, self.kept_mask_ = int(N.size), int((~keep).sum()), keep
        groups = self._groups(N[keep], D[keep], L[keep])
        if len(groups) < 2:
            raise UserError("--group-by: no other group has 3 runs within the target group's compute range; "
                            "nothing to share with, fit the group alone")
        xm = float(np.mean(np.concatenate([np.log(g[1]) for g in groups])))
        ym = float(np.mean(np.concatenate([np.log(g[2]) for g in groups])))
        data = [(np.log(n) - xm, np.log(d) - ym, np.log(l)) for _, n, d, l in groups]
        sep = [base.clone(bootstrap=0, holdout_top_compute=None, progress=False, drop_top_loss=0,
                          min_compute=None, min_tokens_per_param=None).fit(n, d, l) for _, n, d, l in groups]
        thetas = [_to_centred(np.array([math.log(s.law_.A), math.log(s.law_.B), math.log(s.law_.E),
                                        s.law_.alpha, s.law_.beta]), xm, ym) for s in sep]
        idx = _layout(len(groups), self.share)
        v, f, gn, n_best = solve_joint(data, idx, _starts(thetas, idx), float(base.delta))
        self.objective_, self.grad_norm_ = f, gn
        self.converged_ = bool(gn < 1e-6)
        self.agreement_ = {"n_starts": len(groups) + 1, "n_starts_at_best": int(n_best),
                           "separate_objectives": [float(s.objective_) for s in sep]}
        self._finish(groups, data, idx, v, xm, ym)
        return self

    def _finish(self, groups, data, idx, v, xm, ym):
        """Laws per group, the target's bootstrap, residuals, ci and the fitted region."""
        base = self.base
        nats = [_to_natural(v[idx[g]], xm, ym) for g in range(len(groups))]
        self.group_laws_ = {name: _law(th) for (name, *_), th in zip(groups, nats)}
        self.group_rows_ = {name: int(n.size) for name, n, _, _ in groups}
        n_boot = int(base.bootstrap)
        samples = _bootstrap(data, idx, v, float(base.delta), n_boot, int(base.seed), xm, ym,
                             progress=bool(base.progress)) if n_boot else None
        _, Nt, Dt, Lt = groups[0]
        law = self.group_laws_[self.target]
        self.law_ = ScalingLaw(*law.params, name="fit", source="scaleplan fit --group-by (joint fit, shared "
                               + ",".join(self.share) + ")", samples=samples, seed=int(base.seed))
        self.law_.residuals = np.log(Lt) - np.log(self.law_.predict(Nt, Dt))
        self.ci_ = {} if samples is None else {k: percentile_interval(samples[:, i]) for i, k in enumerate(PARAM_NAMES)}
        self.n_rows_ = int(Nt.size)
        self._fitted_region = (Nt, Dt, Lt)
        self.warnings_ = [] if self.converged_ else [f"joint fit not converged: gradient norm {self.grad_norm_:.2e}"]
        self.bootstrap_converged_frac_ = None
        self.holdout_ = None

    @property
    def params_(self) -> dict[str, float]:
        return {k: getattr(self.law_, k) for k in PARAM_NAMES}

    def result(self, meta: dict | None = None) -> FitResult:
        Nf, Df, _ = self._fitted_region
        groups = {name: {**{k: getattr(law, k) for k in PARAM_NAMES}, "n_rows": self.group_rows_[name]}
                  for name, law in self.group_laws_.items()}
        self.base._fitted_region = self._fitted_region  # the base's _meta describes the target's fitted rows
        m = {**self.base._meta(), **(meta or {}), "groups": groups,
             "share": list(self.share), "target_group": self.target}
        return FitResult(law=self.law_, ci=self.ci_, n_rows=self.n_rows_, n_dropped=self.n_dropped_,
                         objective=self.objective_, converged=self.converged_, grad_norm=self.grad_norm_,
                         agreement=self.agreement_, warnings=list(self.warnings_), meta=m)


def _law(theta_nat) -> ScalingLaw:
    a, b, e, alpha, beta = (float(t) for t in theta_nat)
    return ScalingLaw(E=math.exp(e), A=math.exp(a), B=math.exp(b), alpha=alpha, beta=beta)


def _starts(thetas, idx) -> list[np.ndarray]:
    """Per-group parameters from the separate fits; shared ones from each group in turn, and their mean."""
    k = int(idx.max()) + 1
    starts = []
    for src in [*range(len(thetas)), None]:
        v = np.zeros(k)
        for g, th in enumerate(thetas):
            v[idx[g]] = th
        for g, th in enumerate(thetas):  # shared slots: overwrite with the chosen source
            for i in range(5):
                if np.sum(idx[:, i] == idx[g, i]) == len(thetas):
                    v[idx[g, i]] = thetas[src][i] if src is not None else np.mean([t[i] for t in thetas])
        starts.append(v)
    return starts


def _bootstrap(data, idx, v, delta, n_boot, seed, xm, ym, progress: bool = False) -> np.ndarray:
    """(n_boot, 5) target-group [E, A, B, alpha, beta] of joint refits on rows resampled within groups
    (a tqdm bar with ``progress``: each joint refit takes a fraction of a second)."""
    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed)
    out = np.empty((n_boot, 5))
    for i in tqdm(range(n_boot), desc="bootstrap refits (joint)", unit="fit", disable=not progress):
        w = [rng.multinomial(d[0].size, np.full(d[0].size, 1.0 / d[0].size)).astype(float) for d in data]
        vb = solve_joint(data, idx, [v], delta, weights=w)[0]
        a, b, e, al, be = _to_natural(vb[idx[0]], xm, ym)
        out[i] = [math.exp(e), math.exp(a), math.exp(b), al, be]
    return out


__all__ = ["GroupFitter", "parse_share", "solve_joint", "SHAREABLE"]
