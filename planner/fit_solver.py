"""The numerical core of the Approach-3 fit: a batched, damped Newton multi-start solver.

Problem (Hoffmann et al. 2022, "Training Compute-Optimal Large Language Models", App. D.2):
minimise over theta = (a, b, e, alpha, beta)

    sum_i  w_i * Huber_delta( LSE(a - alpha log N_i, b - beta log D_i, e) - log L_i )

with A, B, E = exp(a), exp(b), exp(e). Besiroglu et al. 2024 ("Chinchilla Scaling: A replication
attempt") showed that the optimiser must be run to tight tolerance: the summed objective is
~1e-3, so scipy L-BFGS-B's default stopping rule (an absolute decrease of ~2e-9) halts far from
the optimum.

How we solve it fast and to tight tolerance:

* All starts run at once as a batched, damped Newton method in numpy (analytic gradient and
  Hessian of the 5 parameters, eigen-decomposed per start; the step uses |eigenvalues| + lambda,
  lambda adapted Levenberg-style, so saddles and plateaus are escaped rather than followed).
* Internally log N and log D are centred (a' = a - alpha * mean(log N)), which makes the Hessian
  well conditioned; results are mapped back.
* Starts that have merged (same fitted function to 1e-5 in log loss) are deduplicated;
  converged ones leave the active set. The best few distinct optima are polished with scipy
  L-BFGS-B at gtol 1e-12, ftol 1e-15.
* Bootstrap resamples are the same problem with integer row weights, so a whole chunk of
  resamples is one batched solve, warm-started from the full-data optimum plus a small cross.

Conventions: theta = (a, b, e, alpha, beta) in natural logs ("natural": raw log N, log D;
"centred": log N, log D minus their means); phi = the free coordinates when exponents are tied
or fixed (theta = M phi + c). The estimator around this is :mod:`planner.fit`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.errors import UserError

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


def _objective(theta, x, y, logL, w, delta, order=2, prior=None):
    """Batched objective (S,), gradient (S, 5) and, for order 2, Hessian (S, 5, 5).

    ``w`` is (R,) or (S, R) row weights (bootstrap counts). The Hessian uses the exact second
    derivative of the Huber function (0 outside |r| <= delta). ``prior`` (mu, kappa): adds the
    Gaussian penalty kappa/2 (e - mu)^2 on e = log E (:mod:`planner.fit_prior`).
    """
    F, g, H = _huber_objective(theta, x, y, logL, w, delta, order)
    if prior is not None:
        mu, kappa = prior
        dev = theta[:, 2] - mu
        F = F + 0.5 * kappa * dev * dev
        if g is not None:
            g[:, 2] += kappa * dev
        if H is not None:
            H[:, 2, 2] += kappa
    return F, g, H


def _huber_objective(theta, x, y, logL, w, delta, order=2):
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
class ParamMap:
    """theta = M @ phi + c: ties (alpha = beta) and fixed exponents as a linear map; ``prior``
    (mu, kappa) an optional Gaussian penalty on e = log E carried with it to every solve."""
    M: np.ndarray  # (5, k)
    c: np.ndarray  # (5,)
    prior: tuple[float, float] | None = None

    @classmethod
    def make(cls, fix_alpha_eq_beta=False, fixed_alpha=None, fixed_beta=None, fixed_e=None):
        """``fixed_e``: e = log E held at this value (E fixed, e.g. a published or another fit's E)."""
        cols, c = [], np.zeros(5)
        for i in range(3):
            if i == 2 and fixed_e is not None:
                c[2] = float(fixed_e)
                continue
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


def _merge_met_starts(theta, a, x, y, mult, active) -> np.ndarray:
    """Keep one representative of the active starts ``a`` that have met; returns the new active set.

    Starts that have met follow one trajectory from then on; ``mult`` counts how many starts a
    representative stands for. "Met" = the same fitted function on the data (log-loss
    predictions equal to 1e-5, far below the ~1e-2 residuals), which also merges starts that
    differ only in the flat parameters of a term too small to matter (e.g. A / N^alpha with
    A = 1, alpha = 2). ``mult`` and ``active`` are updated in place.
    """
    lse = _terms(theta, x, y, weights=False)[0]
    _, first, inv = np.unique(np.round(lse, 5), axis=0, return_index=True, return_inverse=True)
    if first.size == a.size:
        return a
    keep = a[first]
    counts = np.bincount(inv.reshape(-1), weights=mult[a], minlength=first.size).astype(np.int64)
    mult[a] = 0
    mult[keep] = counts
    active[a] = False
    active[keep] = True
    return np.flatnonzero(active)


def _newton(phi, P: ParamMap, x, y, logL, w, delta, *, max_iter=400, gtol=1e-12, dedupe=True, prune=True):
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
        F, g, H = _objective(th, x, y, logL, ww, delta, order, P.prior)
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
            a = _merge_met_starts(P.theta(phi[a]), a, x, y, mult, active)
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


def _polish(theta_c, P: ParamMap, x, y, logL, w, delta):
    """scipy L-BFGS-B at tight tolerance from one centred theta; returns (theta_c, f)."""
    from scipy.optimize import minimize

    def fun(ph):
        F, g, _ = _objective(P.theta(ph[None, :]), x, y, logL, w, delta, order=1, prior=P.prior)
        return float(F[0]), (g @ P.M)[0]

    phi0 = P.phi(theta_c[None, :])[0]
    res = minimize(fun, phi0, jac=True, method="L-BFGS-B",
                   options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 10000, "maxcor": 20})
    th = P.theta(res.x[None, :])[0]
    return th, float(res.fun)


# ----------------------------------------------------------------------------- bootstrap worker
def _bootstrap_chunk(args: tuple) -> np.ndarray:
    """Top-level (spawn-safe) worker: fit a chunk of resamples; returns (k, 5) natural theta."""
    (x, y, logL, delta, starts_c, M, c, counts, prior) = args
    P = ParamMap(M, c, prior)
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


# ----------------------------------------------------------------------------- the two solves
@dataclass
class Optimum:
    """The best of all starts: natural theta, summed Huber objective, gradient norm in the
    natural parameterisation (free directions only), and how the starts agree."""

    theta: np.ndarray
    objective: float
    grad_norm: float
    agreement: dict


def solve_multistart(x, y, logL, starts_nat, P: ParamMap, delta: float, weights=None) -> Optimum:
    """Run every start (natural theta rows) on the full data; polish the best three distinct optima.

    ``weights`` (R,): per-row weights of the Huber terms (default 1 each), e.g. compute weights."""
    xm, ym = float(x.mean()), float(y.mean())
    xc, yc = x - xm, y - ym
    starts_c = _to_centred(starts_nat, xm, ym)
    phi0 = P.phi(starts_c)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    phi, f, gn, mult = _newton(phi0, P, xc, yc, logL, w, delta)
    alive = mult > 0
    th_c = P.theta(phi[alive])
    f, mult = f[alive], mult[alive]
    order = np.argsort(np.where(np.isfinite(f), f, np.inf))
    # polish the best few distinct optima at tight tolerance, keep the best
    best_th, best_f = th_c[order[0]], f[order[0]]
    for i in order[:3]:
        th_p, f_p = _polish(th_c[i], P, xc, yc, logL, w, delta)
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
    _, g, _ = _objective(nat[None, :], x, y, logL, w, delta, order=1, prior=P.prior)
    gnorm = float(np.linalg.norm((g @ P.M)[0]))
    return Optimum(theta=nat, objective=float(best_f), grad_norm=gnorm, agreement=agreement)


def bootstrap_refits(x, y, logL, P: ParamMap, theta_nat: np.ndarray, delta: float, n_boot: int, *, seed: int,
                     n_jobs: int, progress: bool, weights=None) -> tuple[np.ndarray, float]:
    """Refit ``n_boot`` resamples of the rows (with replacement), warm-started at ``theta_nat``;
    ``weights`` (R,) multiply each row's resampling count (the fit's row weights).

    Returns the (n_boot, 5) samples [E, A, B, alpha, beta] and the fraction of refits whose
    gradient norm is below 1e-6. Chunks of 25 resamples run in ``n_jobs`` spawned processes.
    """
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing

    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed)
    R = x.size
    counts = rng.multinomial(R, np.full(R, 1.0 / R), size=n_boot)  # resampling rows with replacement
    if weights is not None:
        counts = counts * np.asarray(weights, dtype=float)[None, :]
    xm, ym = float(x.mean()), float(y.mean())
    base = _to_centred(theta_nat, xm, ym)
    # warm starts: the full-data optimum and a small cross around it in the exponents
    starts = [base]
    for da, db in ((0.15, 0.0), (-0.15, 0.0), (0.0, 0.15), (0.0, -0.15), (0.15, 0.15), (-0.15, -0.15)):
        s = base.copy()
        s[3] = max(s[3] + da, 0.01)
        s[4] = max(s[4] + db, 0.01)
        starts.append(s)
    starts_c = np.unique(P.theta(P.phi(np.array(starts))), axis=0)
    chunk = 25
    jobs = [(x - xm, y - ym, logL, float(delta), starts_c, P.M, P.c, counts[i:i + chunk], P.prior)
            for i in range(0, n_boot, chunk)]
    results = []
    bar = tqdm(total=n_boot, desc="bootstrap refits", unit="fit", disable=not progress, file=None)
    workers = min(int(n_jobs), len(jobs))
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
    nat = _to_natural(out[:, :5], xm, ym)
    samples = np.column_stack([np.exp(nat[:, 2]), np.exp(nat[:, 0]), np.exp(nat[:, 1]), nat[:, 3], nat[:, 4]])
    return samples, float(np.mean(out[:, 5] < 1e-6))


__all__ = ["HOFFMANN_GRID", "SMALL_GRID", "grid_starts", "solve_multistart", "bootstrap_refits", "Optimum", "ParamMap",
           "PRUNE_FACTOR", "PRUNE_REL_IMPROVEMENT"]
