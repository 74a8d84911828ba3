"""Chinchilla Approach 2: isoFLOP profiles -> compute-optimal N*(C) ∝ C^a and D*(C) ∝ C^b.

Method (Hoffmann et al. 2022, Sec. 3.2): for each FLOP budget C, fit a parabola of the loss in
log N through the runs of that budget; its vertex is the loss-optimal model size N*(C), and
D*(C) = C / (6 N*(C)). A power law N* = k C^a (a straight line in log-log) is then fitted over the
budgets; likewise D* = k' C^b. Since D* = C / (6 N*), b = 1 - a exactly.

A budget is *refused* (kept in the result with the reason, not raised) when it has fewer than 3
distinct model sizes, a non-positive curvature, or a vertex outside the sampled range of N (the
optimum was not bracketed). Only when fewer than 2 budgets remain is a UserError raised.

Intervals: 95 % percentile intervals from a bootstrap that resamples runs *within* each budget
(with replacement), refits every parabola and the log-log line; the OLS standard errors of the
slopes are reported too.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from planner.errors import UserError


@dataclass
class BudgetOptimum:
    """The parabola vertex of one isoFLOP profile (or why there is none)."""
    C: float
    n_points: int
    n_distinct: int
    N_opt: float | None = None
    D_opt: float | None = None
    loss_opt: float | None = None
    curvature: float | None = None  # d^2 L / d(ln N)^2 at the vertex
    refused: str | None = None


@dataclass
class IsoFlopResult:
    optima: list[BudgetOptimum]
    a: float
    b: float
    kN: float  # N* = kN * C^a
    kD: float  # D* = kD * C^b
    a_se: float
    b_se: float
    ci: dict[str, list[float]] = field(default_factory=dict)
    bootstrap_n: int = 0

    @property
    def used(self) -> list[BudgetOptimum]:
        return [o for o in self.optima if o.refused is None]

    def N_opt(self, C) -> np.ndarray:
        return self.kN * np.asarray(C, dtype=float) ** self.a

    def D_opt(self, C) -> np.ndarray:
        return self.kD * np.asarray(C, dtype=float) ** self.b

    def to_dict(self) -> dict[str, Any]:
        return {"approach": 2, "a": self.a, "b": self.b, "kN": self.kN, "kD": self.kD, "a_se": self.a_se,
                "b_se": self.b_se, "ci": self.ci, "bootstrap_n": self.bootstrap_n,
                "n_budgets": len(self.optima), "n_used": len(self.used),
                "optima": [asdict(o) for o in self.optima]}


def group_budgets(C: np.ndarray, rel_tol: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Label runs by FLOP budget: exact equality (rel_tol = 0) or relative-tolerance bins.

    Bins are formed in sorted order: a run joins the current bin while C / C_first - 1 <= rel_tol.
    Returns (labels, budget per label = geometric mean of the bin).
    """
    C = np.asarray(C, dtype=float)
    order = np.argsort(C, kind="stable")
    labels = np.empty(C.size, dtype=np.int64)
    first, lab = None, -1
    for i in order:
        if first is None or C[i] > first * (1 + rel_tol) * (1 + 1e-12):
            lab += 1
            first = C[i]
        labels[i] = lab
    budgets = np.array([math.exp(np.log(C[labels == k]).mean()) for k in range(lab + 1)])
    return labels, budgets


def fit_budget(C: float, N: np.ndarray, L: np.ndarray, weights: np.ndarray | None = None,
               flops_per_token_per_param: float = 6.0, window: int | None = None) -> BudgetOptimum:
    """Parabola of L in ln N for one budget; its vertex or the reason it is refused.

    ``window``: fit only the ``window`` runs nearest in size to the lowest-loss run (a parabola is
    a local model; wide profiles are asymmetric). None = all runs of the budget (Hoffmann et al.).
    """
    N, L = np.asarray(N, dtype=float), np.asarray(L, dtype=float)
    if window is not None and N.size > window:
        order = np.argsort(N, kind="stable")
        i = int(np.flatnonzero(order == np.argmin(L))[0])
        lo = max(0, min(i - window // 2, N.size - window))
        sel = order[lo:lo + window]
        N, L = N[sel], L[sel]
        weights = None if weights is None else np.asarray(weights)[sel]
    u = np.log(N)
    n_distinct = int(np.unique(np.round(u, 9)).size)
    out = BudgetOptimum(C=float(C), n_points=int(N.size), n_distinct=n_distinct)
    if n_distinct < 3:
        out.refused = f"only {n_distinct} distinct model sizes (a parabola needs 3)"
        return out
    um = u.mean()
    w = None if weights is None else np.sqrt(np.asarray(weights, dtype=float))
    c2, c1, c0 = np.polyfit(u - um, L, 2, w=w)
    if not c2 > 0:
        out.refused = f"profile is not convex (curvature {2 * c2:.3g} <= 0): no minimum"
        return out
    v = -c1 / (2 * c2)
    if not (u.min() - um <= v <= u.max() - um):
        side = "below" if v < u.min() - um else "above"
        out.refused = (f"vertex N={math.exp(v + um):.3g} lies {side} the sampled sizes "
                       f"[{N.min():.3g}, {N.max():.3g}]: the optimum is not bracketed")
        return out
    out.N_opt = float(math.exp(v + um))
    out.D_opt = float(C / (flops_per_token_per_param * out.N_opt))
    out.loss_opt = float(c0 + c1 * v + c2 * v * v)
    out.curvature = float(2 * c2)
    return out


def _loglog(C: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """OLS of ln y on ln C: slope, intercept (ln k), slope standard error."""
    X, Y = np.log(C), np.log(y)
    n = X.size
    slope, icpt = np.polyfit(X, Y, 1)
    if n > 2:
        resid = Y - (icpt + slope * X)
        se = math.sqrt(resid @ resid / (n - 2) / ((X - X.mean()) @ (X - X.mean())))
    else:
        se = float("nan")
    return float(slope), float(icpt), se


def fit_isoflop(N, L, C, *, rel_tol: float = 0.0, weights=None, window: int | None = None, bootstrap: int = 200,
                seed: int = 0, flops_per_token_per_param: float = 6.0) -> IsoFlopResult:
    """Approach 2 over runs with parameters N, loss L and FLOPs C (D = C / (6 N) per budget).

    ``rel_tol``: runs whose FLOPs differ by at most this relative amount share a budget (0 = exact).
    ``weights``: optional per-run weights of the parabola least squares (e.g. 1 / var(loss)).
    ``window``: see :func:`fit_budget`. ``bootstrap``: resamples for the exponent intervals.
    """
    if window is not None and window < 3:
        raise UserError(f"window must be at least 3 runs (a parabola has 3 coefficients), got {window}")
    N, L, C = (np.asarray(v, dtype=float).reshape(-1) for v in (N, L, C))
    if not (N.size == L.size == C.size):
        raise UserError(f"N, loss and C must have the same length, got {N.size}, {L.size}, {C.size}")
    for name, v in (("N", N), ("loss", L), ("C", C)):
        if not np.all(np.isfinite(v) & (v > 0)):
            raise UserError(f"{name} must be finite and > 0 in every row; fix the runs table")
    wts = None if weights is None else np.asarray(weights, dtype=float).reshape(-1)
    labels, budgets = group_budgets(C, rel_tol)
    groups = [np.flatnonzero(labels == k) for k in range(budgets.size)]
    optima = [fit_budget(budgets[k], N[g], L[g], None if wts is None else wts[g], flops_per_token_per_param,
                         window) for k, g in enumerate(groups)]
    used = [o for o in optima if o.refused is None]
    if len(used) < 2:
        reasons = "; ".join(f"C={o.C:.3g}: {o.refused}" for o in optima if o.refused) or "one budget only"
        raise UserError(f"isoFLOP fit needs at least 2 budgets with a bracketed minimum, got {len(used)} "
                        f"({reasons}); add runs on both sides of each optimum")
    Cu = np.array([o.C for o in used])
    a, ia, a_se = _loglog(Cu, np.array([o.N_opt for o in used]))
    b, ib, b_se = _loglog(Cu, np.array([o.D_opt for o in used]))
    res = IsoFlopResult(optima=optima, a=a, b=b, kN=math.exp(ia), kD=math.exp(ib), a_se=a_se, b_se=b_se)
    if bootstrap:
        rng = np.random.default_rng(seed)
        ok_groups = [(k, groups[k]) for k, o in enumerate(optima) if o.refused is None]
        sa, sb = [], []
        for _ in range(int(bootstrap)):
            cs, ns = [], []
            for k, g in ok_groups:
                pick = rng.choice(g, size=g.size, replace=True)
                o = fit_budget(budgets[k], N[pick], L[pick], None if wts is None else wts[pick],
                               flops_per_token_per_param, window)
                if o.refused is None:
                    cs.append(o.C)
                    ns.append(o.N_opt)
            if len(cs) >= 2:
                cs, ns = np.array(cs), np.array(ns)
                sa.append(_loglog(cs, ns)[0])
                sb.append(_loglog(cs, cs / (flops_per_token_per_param * ns))[0])
        if sa:
            res.ci = {"a": [float(np.percentile(sa, 2.5)), float(np.percentile(sa, 97.5))],
                      "b": [float(np.percentile(sb, 2.5)), float(np.percentile(sb, 97.5))]}
            res.bootstrap_n = len(sa)
    return res


__all__ = ["BudgetOptimum", "IsoFlopResult", "group_budgets", "fit_budget", "fit_isoflop"]
