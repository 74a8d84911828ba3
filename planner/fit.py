"""Chinchilla Approach 3: fit L(N, D) = E + A / N^alpha + B / D^beta with honest uncertainty.

Method (Hoffmann et al. 2022, "Training Compute-Optimal Large Language Models", App. D.2):
minimise over theta = (a, b, e, alpha, beta)

    sum_i  w_i * Huber_delta( LSE(a - alpha log N_i, b - beta log D_i, e) - log L_i )

with A, B, E = exp(a), exp(b), exp(e), delta = 1e-3, started from every point of the grid
alpha, beta in {0, 0.5, ..., 2}, e in {-1, -0.5, ..., 1}, a, b in {0, 5, ..., 25} (4,500 starts),
keeping the best. Besiroglu et al. 2024 ("Chinchilla Scaling: A replication attempt") showed that
the optimiser must be run to tight tolerance: the summed objective is ~1e-3, so scipy L-BFGS-B's
default stopping rule (an absolute decrease of ~2e-9) halts far from the optimum.

How we solve it fast and to tight tolerance:

* All starts run at once as a batched, damped Newton method in numpy (analytic gradient and
  Hessian of the 5 parameters, eigen-decomposed per start; the step uses |eigenvalues| + lambda,
  lambda adapted Levenberg-style, so saddles and plateaus are escaped rather than followed).
* Internally log N and log D are centred (a' = a - alpha * mean(log N)), which makes the Hessian
  well conditioned; results are mapped back.
* Starts that have merged (same parameters to 1e-7) are deduplicated; converged ones leave the
  active set. The best few distinct optima are polished with scipy L-BFGS-B at gtol 1e-12,
  ftol 1e-15 and the result's gradient norm is reported.
* Bootstrap resamples are the same problem with integer row weights, so a whole chunk of
  resamples is one batched solve, warm-started from the full-data optimum plus a small grid.

Convergence is shown, not assumed: ``grad_norm_`` is the gradient norm of the objective at the
optimum in the (a, b, e, alpha, beta) parameterisation, ``agreement_`` gives how many starts
reached an objective within a relative 1e-6 of the best and the spread of alpha, beta among them.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from planner.errors import UserError

PARAM_KEYS = ("E", "A", "B", "alpha", "beta")
#: Hoffmann et al. 2022, App. D.2, initialisation grid.
HOFFMANN_GRID = {
    "alpha": np.arange(0.0, 2.0 + 1e-9, 0.5),
    "beta": np.arange(0.0, 2.0 + 1e-9, 0.5),
    "e": np.arange(-1.0, 1.0 + 1e-9, 0.5),
    "a": np.arange(0.0, 25.0 + 1e-9, 5.0),
    "b": np.arange(0.0, 25.0 + 1e-9, 5.0),
}
#: A reduced grid (72 starts) for quick fits and tests that are not about the grid.
SMALL_GRID = {
    "alpha": np.array([0.2, 0.5, 1.0]),
    "beta": np.array([0.2, 0.5, 1.0]),
    "e": np.array([-1.0, 0.5]),
    "a": np.array([5.0, 15.0]),
    "b": np.array([5.0, 15.0]),
}
GRAD_TOL = 1e-8  # converged_ needs the gradient norm at the optimum below this


# ----------------------------------------------------------------------------- the objective
def _terms(theta: np.ndarray, x: np.ndarray, y: np.ndarray, weights: bool = True):
    """LSE of the three terms (a - alpha x, b - beta y, e) and their softmax weights.

    theta (S, 5) = (a, b, e, alpha, beta); x, y (R,). Written with in-place operations: this is
    the inner loop of every fit.
    """
    t1 = np.multiply(theta[:, 3:4], -x)
    t1 += theta[:, 0:1]
    t2 = np.multiply(theta[:, 4:5], -y)
    t2 += theta[:, 1:2]
    m = np.maximum(t1, t2)
    np.maximum(m, theta[:, 2:3], out=m)
    t1 -= m
    np.exp(t1, out=t1)
    t2 -= m
    np.exp(t2, out=t2)
    t3 = np.subtract(theta[:, 2:3], m)
    np.exp(t3, out=t3)
    s = t1 + t2
    s += t3
    lse = np.log(s)
    lse += m
    if not weights:
        return lse, None, None, None
    np.reciprocal(s, out=s)
    t1 *= s
    t2 *= s
    t3 *= s
    return lse, t1, t2, t3


def _huber(r: np.ndarray, delta: float):
    """Huber value, first and second derivative (psi, psi')."""
    ar = np.abs(r)
    inside = ar <= delta
    f = np.where(inside, 0.5 * r * r, delta * (ar - 0.5 * delta))
    psi = np.where(inside, r, delta * np.sign(r))
    return f, psi, inside.astype(float)


def _objective(theta, x, y, logL, w, delta, order=2):
    """Batched objective (S,), gradient (S, 5) and, for order 2, Hessian (S, 5, 5).

    ``w`` is (R,) or (S, R) row weights (bootstrap counts). The Hessian uses the exact second
    derivative of the Huber function (0 outside |r| <= delta).
    """
    with np.errstate(over="ignore", invalid="ignore"):
        lse, p1, p2, p3 = _terms(theta, x, y, weights=order > 0)
        r = lse - logL
        if order == 0:
            np.abs(r, out=r)
            f = np.where(r <= delta, 0.5 * r * r, delta * (r - 0.5 * delta))
            return (f @ w if w.ndim == 1 else (w * f).sum(axis=1)), None, None
        f, psi, dpsi = _huber(r, delta)
        F = f @ w if w.ndim == 1 else (w * f).sum(axis=1)
        d = w * psi
        G = np.stack([p1, p2, p3, -p1 * x, -p2 * y], axis=-1)  # dLSE/dtheta per row, (S, R, 5)
        g = np.einsum("sr,srk->sk", d, G)
        if order == 1:
            return F, g, None
        c = w * dpsi - d
        H = np.matmul(G.transpose(0, 2, 1), G * c[:, :, None])
        # + sum_r d_r J^T diag(p) J: the diagonal-softmax part of the LSE Hessian
        dp1, dp2 = d * p1, d * p2
        s1, s1x, s1xx = dp1.sum(1), (dp1 * x).sum(1), (dp1 * x * x).sum(1)
        s2, s2y, s2yy = dp2.sum(1), (dp2 * y).sum(1), (dp2 * y * y).sum(1)
        s3 = (d * p3).sum(1)
        H[:, 0, 0] += s1
        H[:, 0, 3] -= s1x
        H[:, 3, 0] -= s1x
        H[:, 3, 3] += s1xx
        H[:, 1, 1] += s2
        H[:, 1, 4] -= s2y
        H[:, 4, 1] -= s2y
        H[:, 4, 4] += s2yy
        H[:, 2, 2] += s3
    return F, g, H


@dataclass
class _Param:
    """theta = M @ phi + c: ties (alpha = beta) and fixed exponents as a linear map."""
    M: np.ndarray  # (5, k)
    c: np.ndarray  # (5,)

    @classmethod
    def make(cls, fix_alpha_eq_beta=False, fixed_alpha=None, fixed_beta=None):
        cols, c = [], np.zeros(5)
        for i in range(3):
            v = np.zeros(5)
            v[i] = 1
            cols.append(v)
        if fix_alpha_eq_beta and fixed_alpha is None and fixed_beta is None:
            cols.append(np.array([0, 0, 0, 1.0, 1.0]))
        else:
            if fix_alpha_eq_beta:  # one exponent fixed and alpha = beta: both fixed
                fixed_alpha = fixed_beta = fixed_alpha if fixed_alpha is not None else fixed_beta
            for i, fixed in ((3, fixed_alpha), (4, fixed_beta)):
                if fixed is None:
                    v = np.zeros(5)
                    v[i] = 1
                    cols.append(v)
                else:
                    c[i] = float(fixed)
        return cls(np.stack(cols, axis=1), c)

    def theta(self, phi):
        return phi @ self.M.T + self.c

    def phi(self, theta):
        return np.linalg.lstsq(self.M, (theta - self.c).T, rcond=None)[0].T


# Stop a start once its objective is this many times the best one's and a step improves it by less
# than this fraction (see _newton).
PRUNE_FACTOR = 1.5
PRUNE_REL_IMPROVEMENT = 1e-2


def _newton(phi, P: _Param, x, y, logL, w, delta, *, max_iter=400, gtol=1e-12, dedupe=True, prune=True):
    """Batched damped Newton over all starts; returns (phi, f, grad_norm, multiplicity).

    ``w`` is (R,) shared weights or (S, R) per-start weights (then no dedupe across rows of w).
    """
    S, k = phi.shape
    phi = phi.copy()
    mult = np.ones(S, dtype=np.int64)
    lam = np.full(S, 1e-3)
    per_start_w = w.ndim == 2
    W = w

    def ev(ph, idx, order):
        th = P.theta(ph)
        ww = W[idx] if per_start_w else W
        F, g, H = _objective(th, x, y, logL, ww, delta, order)
        if g is not None:
            g = g @ P.M
        if H is not None:
            H = P.M.T @ H @ P.M
        return F, g, H

    f, g, H = ev(phi, np.arange(S), 2)
    active = np.ones(S, dtype=bool)
    stall = np.zeros(S, dtype=np.int64)
    for it in range(max_iter):
        a = np.flatnonzero(active)
        if a.size == 0:
            break
        if dedupe and not per_start_w and it % 3 == 0:
            # starts that have met follow one trajectory from here on: keep one representative and
            # count how many starts it stands for. "Met" = the same fitted function on the data
            # (log-loss predictions equal to 1e-5, far below the ~1e-2 residuals), which also merges starts that differ only in
            # the flat parameters of a term too small to matter (e.g. A / N^alpha with A = 1, alpha = 2).
            lse = _terms(P.theta(phi[a]), x, y, weights=False)[0]
            _, first, inv = np.unique(np.round(lse, 5), axis=0, return_index=True, return_inverse=True)
            if first.size < a.size:
                keep = a[first]
                counts = np.bincount(inv.reshape(-1), weights=mult[a], minlength=first.size).astype(np.int64)
                mult[a] = 0
                mult[keep] = counts
                active[a] = False
                active[keep] = True
                a = np.flatnonzero(active)
        ev_, V = np.linalg.eigh(H[a])
        ev_ = np.where(np.isfinite(ev_), ev_, 1e300)
        gv = np.einsum("sji,sj->si", V, g[a])
        step = -np.einsum("sij,sj->si", V, gv / (np.abs(ev_) + lam[a, None]))
        trial = phi[a] + step
        f_new, _, _ = ev(trial, a, 0)  # value only; derivatives for the accepted steps below
        ok = np.isfinite(f_new) & (f_new <= f[a])
        acc = a[ok]
        if acc.size:
            f_acc, g_acc, H_acc = ev(trial[ok], acc, 2)
            good = np.all(np.isfinite(g_acc), axis=1) & np.all(np.isfinite(H_acc), axis=(1, 2))
            ok[np.flatnonzero(ok)[~good]] = False
            acc = a[ok]
            improvement = f[acc] - f_acc[good]
            phi[acc], f[acc], g[acc], H[acc] = trial[ok], f_acc[good], g_acc[good], H_acc[good]
        lam[acc] = np.maximum(lam[acc] * 0.2, 1e-12)
        lam[a[~ok]] *= 8.0
        gn = np.linalg.norm(g[a], axis=1)
        tiny = np.zeros(a.size, dtype=bool)
        if acc.size:
            tiny[ok] = improvement <= 1e-17 + 1e-14 * np.abs(f[acc])
        stall[a] = np.where(tiny | ~ok, stall[a] + 1, 0)
        done = (gn < gtol) | (lam[a] > 1e7) | (stall[a] >= 6)
        if prune and not per_start_w and it >= 10:  # objectives of different resamples don't compare
            # A start far above the best objective that has also nearly stopped improving sits in
            # another (usually degenerate: one term vanishing) basin; Newton steps inside the best
            # basin still cut f by a large fraction, so those starts are never stopped here.
            rel = np.ones(a.size)
            if acc.size:
                rel[ok] = improvement / np.maximum(f[acc], 1e-300)
            best = f[mult > 0].min()
            done |= (f[a] > PRUNE_FACTOR * best) & (rel < PRUNE_REL_IMPROVEMENT)
        active[a[done]] = False
    gnorm = np.linalg.norm(g, axis=1)
    return phi, f, gnorm, mult


def _to_natural(theta_c: np.ndarray, xm: float, ym: float) -> np.ndarray:
    """Centred (a', b', e, alpha, beta) -> (a, b, e, alpha, beta) in the raw log N, log D."""
    th = np.array(theta_c, dtype=float, copy=True)
    th[..., 0] = th[..., 0] + th[..., 3] * xm
    th[..., 1] = th[..., 1] + th[..., 4] * ym
    return th


def _to_centred(theta: np.ndarray, xm: float, ym: float) -> np.ndarray:
    th = np.array(theta, dtype=float, copy=True)
    th[..., 0] = th[..., 0] - th[..., 3] * xm
    th[..., 1] = th[..., 1] - th[..., 4] * ym
    return th


def grid_starts(grid: dict | str = "hoffmann") -> np.ndarray:
    """All combinations of a start grid as (S, 5) natural theta (a, b, e, alpha, beta)."""
    if isinstance(grid, str):
        if grid not in ("hoffmann", "small"):
            raise UserError(f"unknown grid {grid!r}; use 'hoffmann' (4,500 starts), 'small' or a dict")
        grid = HOFFMANN_GRID if grid == "hoffmann" else SMALL_GRID
    missing = {"a", "b", "e", "alpha", "beta"} - set(grid)
    if missing:
        raise UserError(f"start grid lacks {sorted(missing)}; give lists for a, b, e, alpha, beta")
    axes = [np.atleast_1d(np.asarray(grid[k], dtype=float)) for k in ("a", "b", "e", "alpha", "beta")]
    if any(ax.size == 0 or not np.all(np.isfinite(ax)) for ax in axes):
        raise UserError("start grid values must be non-empty lists of finite numbers")
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.reshape(-1) for m in mesh], axis=1)


def _polish(theta_c, P: _Param, x, y, logL, w, delta):
    """scipy L-BFGS-B at tight tolerance from one centred theta; returns (theta_c, f)."""
    from scipy.optimize import minimize

    def fun(ph):
        F, g, _ = _objective(P.theta(ph[None, :]), x, y, logL, w, delta, order=1)
        return float(F[0]), (g @ P.M)[0]

    phi0 = P.phi(theta_c[None, :])[0]
    res = minimize(fun, phi0, jac=True, method="L-BFGS-B",
                   options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 10000, "maxcor": 20})
    th = P.theta(res.x[None, :])[0]
    return th, float(res.fun)


# ----------------------------------------------------------------------------- compute-optimal
def _optimal_allocation(E, A, B, alpha, beta, C, k=6.0):
    """Closed-form compute-optimal N*, D* for C = k N D (Hoffmann et al. 2022, Eq. 4):
    G = (alpha A / (beta B))^(1/(alpha+beta)), N* = G (C/k)^(beta/(alpha+beta)),
    D* = G^-1 (C/k)^(alpha/(alpha+beta)). Vectorised over the parameter arrays."""
    E, A, B, alpha, beta = map(np.asarray, (E, A, B, alpha, beta))
    with np.errstate(all="ignore"):
        s = alpha + beta
        G = (alpha * A / (beta * B)) ** (1.0 / s)
        N = G * (C / k) ** (beta / s)
        D = (C / k) ** (alpha / s) / G
        L = E + A / N ** alpha + B / D ** beta
    return N, D, L


# ----------------------------------------------------------------------------- bootstrap worker
def _bootstrap_chunk(args: tuple) -> np.ndarray:
    """Top-level (spawn-safe) worker: fit a chunk of resamples; returns (k, 5) natural theta."""
    (x, y, logL, delta, starts_c, M, c, counts) = args
    P = _Param(M, c)
    n_res, R = counts.shape
    n_st = starts_c.shape[0]
    W = np.repeat(counts.astype(float), n_st, axis=0)  # (n_res * n_st, R)
    phi0 = np.tile(P.phi(starts_c), (n_res, 1))
    phi, f, gn, _ = _newton(phi0, P, x, y, logL, W, delta, max_iter=200, gtol=1e-11, dedupe=False)
    f = f.reshape(n_res, n_st)
    best = np.argmin(np.where(np.isfinite(f), f, np.inf), axis=1)
    th = P.theta(phi).reshape(n_res, n_st, 5)[np.arange(n_res), best]
    gbest = gn.reshape(n_res, n_st)[np.arange(n_res), best]
    return np.concatenate([th, gbest[:, None]], axis=1)


# ----------------------------------------------------------------------------- the estimator
class ChinchillaFitter:
    """Approach-3 fitter, scikit-learn style: settings in the constructor, results after ``fit``.

    Results (set by :meth:`fit`): ``params_`` dict E, A, B, alpha, beta; ``objective_`` (summed
    Huber loss at the optimum); ``grad_norm_``; ``converged_``; ``agreement_``; ``ci_`` (95 %
    percentile intervals per parameter, from the bootstrap); ``samples_`` ((k, 5) bootstrap
    [E, A, B, alpha, beta]); ``residuals_`` (log L - log L_hat of the fitted rows);
    ``warnings_``; ``n_rows_``, ``n_dropped_``, ``holdout_``.
    """

    def __init__(self, delta: float = 1e-3, grid: str | dict = "hoffmann", fix_alpha_eq_beta: bool = False,
                 fixed_alpha: float | None = None, fixed_beta: float | None = None, drop_top_loss: int = 0,
                 min_tokens_per_param: float | None = None, bootstrap: int = 0, seed: int = 0, n_jobs: int = 2,
                 holdout_top_compute: float | None = None, progress: bool = False):
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
        for name in ("fixed_alpha", "fixed_beta"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise UserError(f"{name} must be a positive number, got {v!r}")

    def _n_free(self) -> int:
        return _Param.make(self.fix_alpha_eq_beta, self.fixed_alpha, self.fixed_beta).M.shape[1]

    def _select(self, N, D, L):
        """Apply drop_top_loss / min_tokens_per_param; returns the kept mask."""
        keep = np.ones(N.size, dtype=bool)
        if self.min_tokens_per_param is not None:
            keep &= D / N >= float(self.min_tokens_per_param)
        k = int(self.drop_top_loss)
        if k:
            order = np.argsort(-L, kind="stable")
            keep[order[:k]] = False
        return keep

    # ---------------------------------------------------------------- core solve
    def _solve(self, x, y, logL, starts_nat, P):
        xm, ym = float(x.mean()), float(y.mean())
        xc, yc = x - xm, y - ym
        starts_c = _to_centred(starts_nat, xm, ym)
        phi0 = P.phi(starts_c)
        w = np.ones_like(x)
        phi, f, gn, mult = _newton(phi0, P, xc, yc, logL, w, self.delta)
        alive = mult > 0
        th_c = P.theta(phi[alive])
        f, mult = f[alive], mult[alive]
        order = np.argsort(np.where(np.isfinite(f), f, np.inf))
        # polish the best few distinct optima at tight tolerance, keep the best
        best_th, best_f = th_c[order[0]], f[order[0]]
        for i in order[:3]:
            th_p, f_p = _polish(th_c[i], P, xc, yc, logL, w, self.delta)
            if f_p < best_f:
                best_th, best_f = th_p, f_p
        nat = _to_natural(best_th, xm, ym)
        # agreement of the starts: those within a relative 1e-6 of the best objective
        near = f <= best_f * (1 + 1e-6) + 1e-15
        nat_all = _to_natural(th_c, xm, ym)
        agreement = {
            "n_starts": int(starts_nat.shape[0]),
            "n_distinct_optima": int(alive.sum()),
            "n_starts_at_best": int(mult[near].sum()),
            "alpha_spread": float(np.ptp(nat_all[near, 3])) if near.any() else float("nan"),
            "beta_spread": float(np.ptp(nat_all[near, 4])) if near.any() else float("nan"),
        }
        # gradient norm in the natural (a, b, e, alpha, beta) parameterisation, free directions only
        _, g, _ = _objective(nat[None, :], x, y, logL, w, self.delta, order=1)
        gnorm = float(np.linalg.norm((g @ P.M)[0]))
        return nat, float(best_f), gnorm, agreement

    def fit(self, N, D, L) -> "ChinchillaFitter":
        """Fit on arrays of parameters N, tokens D and losses L (nats). Returns self."""
        self._check_settings()
        N, D, L = (np.asarray(v, dtype=float).reshape(-1) for v in (N, D, L))
        if not (N.size == D.size == L.size):
            raise UserError(f"N, D, L must have the same length, got {N.size}, {D.size}, {L.size}")
        for name, v in (("N", N), ("D", D), ("loss", L)):
            bad = ~np.isfinite(v) | (v <= 0)
            if bad.any():
                rows = ", ".join(str(i + 1) for i in np.flatnonzero(bad)[:8])
                raise UserError(f"{name} must be finite and > 0; bad rows: {rows}; fix or remove them")
        keep = self._select(N, D, L)
        self.n_input_ = int(N.size)
        self.n_dropped_ = int((~keep).sum())
        self.kept_mask_ = keep
        N, D, L = N[keep], D[keep], L[keep]
        P = _Param.make(self.fix_alpha_eq_beta, self.fixed_alpha, self.fixed_beta)
        n_free = P.M.shape[1]
        if self.holdout_top_compute:
            C = 6.0 * N * D
            n_out = max(1, int(round(self.holdout_top_compute * N.size)))
            order = np.argsort(C, kind="stable")
            held = np.zeros(N.size, dtype=bool)
            held[order[-n_out:]] = True
        else:
            held = np.zeros(N.size, dtype=bool)
        Nf, Df, Lf = N[~held], D[~held], L[~held]
        if Nf.size < n_free + 2:
            raise UserError(f"only {Nf.size} rows remain after dropping/holding out, the fit needs at least "
                            f"{n_free + 2} (free parameters + 2); use fewer drops or add runs")
        x, y, logL = np.log(Nf), np.log(Df), np.log(Lf)
        starts = grid_starts(self.grid)
        if P.M.shape[1] < 5:  # tied / fixed exponents: project the starts onto the constraint
            starts = np.unique(P.theta(P.phi(starts)), axis=0)
        nat, fbest, gnorm, agreement = self._solve(x, y, logL, starts, P)
        a, b, e, alpha, beta = nat
        self.theta_ = nat
        self.params_ = {"E": math.exp(e), "A": math.exp(a), "B": math.exp(b), "alpha": float(alpha),
                        "beta": float(beta)}
        self.objective_ = fbest
        self.grad_norm_ = gnorm
        self.agreement_ = agreement
        spread_ok = agreement["n_starts_at_best"] < 2 or max(agreement["alpha_spread"], agreement["beta_spread"]) < 1e-4
        self.converged_ = bool(gnorm < GRAD_TOL and spread_ok)
        self.n_rows_ = int(Nf.size)
        self.residuals_ = logL - np.log(self._predict_theta(nat[None, :], Nf, Df)[0])
        self._data = (Nf, Df, Lf, P)
        self.samples_ = None
        self.ci_ = {}
        self.bootstrap_converged_frac_ = None
        if self.bootstrap or self.holdout_top_compute:
            self._run_bootstrap(x, y, logL, P, int(self.bootstrap) or 200)
        self.holdout_ = None
        if held.any():
            self.holdout_ = self._holdout(N[held], D[held], L[held])
        self.warnings_ = self._warnings(Nf, Df, P)
        return self

    # ---------------------------------------------------------------- bootstrap
    def _run_bootstrap(self, x, y, logL, P, n_boot):
        from concurrent.futures import ProcessPoolExecutor
        import multiprocessing

        from tqdm.auto import tqdm

        rng = np.random.default_rng(self.seed)
        R = x.size
        counts = rng.multinomial(R, np.full(R, 1.0 / R), size=n_boot)  # resampling rows with replacement
        xm, ym = float(x.mean()), float(y.mean())
        base = _to_centred(self.theta_, xm, ym)
        # warm starts: the full-data optimum and a small cross around it in the exponents
        starts = [base]
        for da, db in ((0.15, 0.0), (-0.15, 0.0), (0.0, 0.15), (0.0, -0.15), (0.15, 0.15), (-0.15, -0.15)):
            s = base.copy()
            s[3] = max(s[3] + da, 0.01)
            s[4] = max(s[4] + db, 0.01)
            starts.append(s)
        starts_c = np.unique(P.theta(P.phi(np.array(starts))), axis=0)
        chunk = 25
        jobs = [(x - xm, y - ym, logL, float(self.delta), starts_c, P.M, P.c, counts[i:i + chunk])
                for i in range(0, n_boot, chunk)]
        results = []
        bar = tqdm(total=n_boot, desc="bootstrap refits", unit="fit", disable=not self.progress, file=None)
        workers = min(int(self.n_jobs), len(jobs))
        if workers > 1:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                for res in pool.map(_bootstrap_chunk, jobs):
                    results.append(res)
                    bar.update(res.shape[0])
        else:
            for job in jobs:
                res = _bootstrap_chunk(job)
                results.append(res)
                bar.update(res.shape[0])
        bar.close()
        out = np.concatenate(results, axis=0)
        th_c, gn = out[:, :5], out[:, 5]
        nat = _to_natural(th_c, xm, ym)
        self.bootstrap_converged_frac_ = float(np.mean(gn < 1e-6))
        self.samples_ = np.column_stack([np.exp(nat[:, 2]), np.exp(nat[:, 0]), np.exp(nat[:, 1]),
                                         nat[:, 3], nat[:, 4]])
        self._resid_rng = np.random.default_rng(self.seed + 1)
        self.ci_ = {k: _pct(self.samples_[:, i]) for i, k in enumerate(PARAM_KEYS)}

    def _noisy_predictions(self, N, D) -> np.ndarray:
        """Bootstrap predictions with resampled residual noise: (k, n) losses (prediction intervals)."""
        s = self.samples_
        N, D = np.asarray(N, dtype=float)[None, :], np.asarray(D, dtype=float)[None, :]
        pred = s[:, 0:1] + s[:, 1:2] / N ** s[:, 3:4] + s[:, 2:3] / D ** s[:, 4:5]
        rng = np.random.default_rng(self.seed + 1)
        eps = rng.choice(self.residuals_, size=pred.shape, replace=True)
        return pred * np.exp(eps)

    def _holdout(self, N, D, L) -> dict:
        pred = self.predict(N, D)
        rel = np.abs(pred - L) / L
        noisy = self._noisy_predictions(N, D)
        lo, hi = np.nanpercentile(noisy, 2.5, axis=0), np.nanpercentile(noisy, 97.5, axis=0)
        inside = (L >= lo) & (L <= hi)
        return {"n": int(N.size), "max_rel_error": float(rel.max()), "mean_rel_error": float(rel.mean()),
                "inside_interval": [bool(v) for v in inside], "frac_inside": float(inside.mean()),
                "rows": [{"N": float(n), "D": float(d), "loss": float(l), "pred": float(p), "lo": float(a),
                          "hi": float(b)} for n, d, l, p, a, b in zip(N, D, L, pred, lo, hi)]}

    # ---------------------------------------------------------------- diagnostics
    def _warnings(self, N, D, P) -> list[str]:
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
            v = self.params_[key]
            if v <= max(lo, 0.0) + 1e-6 or v >= hi - 1e-6:
                out.append(f"{key} = {v:.4g} is at the edge of the start grid [{lo}, {hi}]: the law is not "
                           "identified by these runs")
        if self.params_["E"] < 0.05 * float(self._data[2].min()):
            out.append(f"E = {self.params_['E']:.3g} is near 0 (the lowest measured loss is {self._data[2].min():.3g}): "
                       "these runs do not reach the loss floor, so the irreducible loss is not identified and "
                       "extrapolations will underestimate loss; add larger or longer runs before planning with it")
        if not self.converged_:
            out.append(f"optimiser not converged: gradient norm {self.grad_norm_:.2e} (need < {GRAD_TOL:g}), "
                       f"alpha/beta spread among best starts {self.agreement_['alpha_spread']:.2e}/"
                       f"{self.agreement_['beta_spread']:.2e}")
        if self.bootstrap_converged_frac_ is not None and self.bootstrap_converged_frac_ < 0.95:
            out.append(f"only {self.bootstrap_converged_frac_:.0%} of bootstrap refits converged (grad < 1e-6)")
        return out

    # ---------------------------------------------------------------- predictions and export
    @staticmethod
    def _predict_theta(theta, N, D):
        a, b, e, alpha, beta = (theta[:, i:i + 1] for i in range(5))
        return np.exp(e) + np.exp(a) / np.asarray(N)[None, :] ** alpha + np.exp(b) / np.asarray(D)[None, :] ** beta

    def _check_fitted(self):
        if not hasattr(self, "params_"):
            raise UserError("this fitter has not been fitted yet; call fit(N, D, L) first")

    def predict(self, N, D) -> np.ndarray:
        """Loss (nats) predicted at parameters N and tokens D (broadcast)."""
        self._check_fitted()
        p = self.params_
        N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
        return p["E"] + p["A"] / N ** p["alpha"] + p["B"] / D ** p["beta"]

    def derived_at(self, C: float, flops_per_token_per_param: float = 6.0) -> dict[str, Any]:
        """Compute-optimal N*, D*, tokens/param and loss at budget C, with 95 % intervals.

        Intervals for N*, D*, tokens/param come from the bootstrap parameter samples; the loss
        interval is a prediction interval: bootstrap prediction times exp(a resampled log residual).
        """
        self._check_fitted()
        if not (math.isfinite(C) and C > 0):
            raise UserError(f"compute budget must be a positive number of FLOPs, got {C!r}")
        p = self.params_
        N, D, L = _optimal_allocation(p["E"], p["A"], p["B"], p["alpha"], p["beta"], C, flops_per_token_per_param)
        out = {"C": float(C), "N_opt": float(N), "D_opt": float(D), "tokens_per_param": float(D / N),
               "loss": float(L), "ci": {}}
        if self.samples_ is not None:
            s = self.samples_
            Ns, Ds, Ls = _optimal_allocation(s[:, 0], s[:, 1], s[:, 2], s[:, 3], s[:, 4], C,
                                             flops_per_token_per_param)
            rng = np.random.default_rng(self.seed + 2)
            Lnoisy = Ls * np.exp(rng.choice(self.residuals_, size=Ls.shape, replace=True))
            out["ci"] = {"N_opt": _pct(Ns), "D_opt": _pct(Ds), "tokens_per_param": _pct(Ds / Ns),
                         "loss": _pct(Lnoisy)}
        return out

    def to_dict(self, meta: dict | None = None) -> dict[str, Any]:
        """The fit.json payload (docs/CONTRACTS.md)."""
        self._check_fitted()
        d = {"approach": 3, **self.params_, "ci": self.ci_, "n_rows": self.n_rows_, "n_dropped": self.n_dropped_,
             "objective": self.objective_, "converged": self.converged_, "grad_norm": self.grad_norm_,
             "agreement": self.agreement_,
             "bootstrap": {"n": 0 if self.samples_ is None else int(self.samples_.shape[0]),
                           "converged_frac": self.bootstrap_converged_frac_,
                           "samples": [] if self.samples_ is None else self.samples_.tolist()},
             "warnings": list(self.warnings_),
             "meta": {"delta": self.delta, "grid": self.grid if isinstance(self.grid, str) else
                      {k: list(map(float, v)) for k, v in self.grid.items()},
                      "fix_alpha_eq_beta": self.fix_alpha_eq_beta, "fixed_alpha": self.fixed_alpha,
                      "fixed_beta": self.fixed_beta, "drop_top_loss": self.drop_top_loss,
                      "min_tokens_per_param": self.min_tokens_per_param, "seed": self.seed,
                      "loss_units": "nats", "flops_per_token_per_param": 6.0,
                      # the fitted region: the planner warns when it extrapolates far beyond it
                      "n_range": [float(self._data[0].min()), float(self._data[0].max())],
                      "d_range": [float(self._data[1].min()), float(self._data[1].max())],
                      **(meta or {})}}
        if self.holdout_ is not None:
            d["holdout"] = self.holdout_
        return d

    def law(self, name: str = "fit"):
        """The fit as a :class:`planner.laws.ScalingLaw` (with bootstrap samples when present)."""
        self._check_fitted()
        from planner.laws import ScalingLaw  # lazy: laws.py is built alongside this module

        p = self.params_
        return ScalingLaw(E=p["E"], A=p["A"], B=p["B"], alpha=p["alpha"], beta=p["beta"], name=name,
                          source="scaleplan fit (Chinchilla Approach 3)", samples=self.samples_,
                          meta={"objective": self.objective_, "converged": self.converged_})


def _pct(v: np.ndarray, level: float = 95.0) -> list[float]:
    v = np.asarray(v, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return [float("nan"), float("nan")]
    lo = (100 - level) / 2
    return [float(np.percentile(v, lo)), float(np.percentile(v, 100 - lo))]


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


__all__ = ["ChinchillaFitter", "HOFFMANN_GRID", "SMALL_GRID", "grid_starts", "PARAM_KEYS", "GRAD_TOL"]
