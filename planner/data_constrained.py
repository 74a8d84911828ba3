"""The data-constrained scaling law of Muennighoff et al. 2023 (arXiv:2305.16264).

When only U unique tokens exist, training on D > U tokens repeats data for D / U epochs.
Repeated tokens and parameters beyond what the unique data can use are worth less than fresh
ones; the paper (Sec. 3, eqs. 5-6, and the huggingface/datablations README) models this by
replacing N and D in the Chinchilla law with effective values:

    U_D = min(U, D)                              unique tokens actually seen
    R_D = D / U_D - 1                            repetitions beyond the first epoch
    D'  = U_D + U_D R_D* (1 - exp(-R_D / R_D*))

    U_N = min(N, N_opt(U_D))                     params the unique data can use compute-optimally
    R_N = N / U_N - 1                            "repeated" (excess) parameters
    N'  = U_N + U_N R_N* (1 - exp(-R_N / R_N*))

    L(N, D, U) = E + A / N'^alpha + B / D'^beta

N_opt(U_D) is the base law's compute-optimal parameter count for a run of U_D tokens: from
N* = G x^a, D* = x^b / G (x = C/6) it is N_opt(D) = G (G D)^(beta/alpha). R_D* (≈ 15.4) is
the number of repetitions after which repeated data has lost 1 - 1/e of its value; R_N* (≈ 5.3)
the same for excess parameters. Published fit (datablations README 'Parametric Fit'): base
E = e^0.6254804, A = e^6.255414, B = e^7.3049974, alpha = beta = 0.3526596,
R_D* = 15.387756, R_N* = 5.309743.

Fitting follows the Chinchilla recipe (Hoffmann et al. 2022, App. D.2): Huber loss (delta =
1e-3) between log predicted and log observed loss, L-BFGS from a grid of starts.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize

from planner.errors import UserError, positive_number
from planner.laws import PRESETS, Allocation, ScalingLaw


@dataclass
class DataConstrainedLaw:
    """Muennighoff et al. 2023's L(N, D, U): a base ScalingLaw plus the decay constants."""

    base: ScalingLaw
    rd_star: float
    rn_star: float
    name: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        self.rd_star = positive_number(self.rd_star, "R_D*")
        self.rn_star = positive_number(self.rn_star, "R_N*")

    def n_opt_for_tokens(self, D):
        """The base law's compute-optimal N for a D-token run: G (G D)^(beta/alpha)."""
        b = self.base
        return b.G * (b.G * np.asarray(D, dtype=float)) ** (b.beta / b.alpha)

    def effective_data(self, D, U):
        """D' = U_D + U_D R_D* (1 - exp(-R_D/R_D*)), U_D = min(U, D), R_D = D/U_D - 1."""
        D = np.asarray(D, dtype=float)
        ud = np.minimum(np.asarray(U, dtype=float), D)
        rd = np.maximum(D / ud - 1.0, 0.0)
        return ud + ud * self.rd_star * (1.0 - np.exp(-rd / self.rd_star))

    def effective_params(self, N, D, U):
        """N' = U_N + U_N R_N* (1 - exp(-R_N/R_N*)), U_N = min(N, N_opt(U_D)), R_N = N/U_N - 1."""
        N = np.asarray(N, dtype=float)
        ud = np.minimum(np.asarray(U, dtype=float), np.asarray(D, dtype=float))
        un = np.minimum(N, self.n_opt_for_tokens(ud))
        rn = np.maximum(N / un - 1.0, 0.0)
        return un + un * self.rn_star * (1.0 - np.exp(-rn / self.rn_star))

    def predict(self, N, D, U):
        """Loss in nats for N params trained on D tokens drawn from U unique tokens."""
        b = self.base
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):  # extreme fitter trials
            out = (b.E + b.A / self.effective_params(N, D, U) ** b.alpha
                   + b.B / self.effective_data(D, U) ** b.beta)
        return float(out) if np.ndim(out) == 0 else out

    def optimal(self, C: float, U: float, flops_per_token_per_param: float = 6.0) -> "DataConstrainedAllocation":
        """N, D (epochs allowed) minimising L(N, D, U) at C = k N D; compared with the
        unconstrained Chinchilla optimum of the base law at the same C."""
        C = positive_number(C, "compute budget C (FLOPs)")
        U = positive_number(U, "unique tokens U")
        k = positive_number(flops_per_token_per_param, "flops_per_token_per_param")
        free = self.base.optimal(C, k)

        def loss_at(logn):
            n = np.exp(logn)
            return self.predict(n, C / (k * n), U)

        # A coarse log-grid first (the iso-FLOP profile has kinks where U_D and U_N switch
        # branches), then a bounded Brent refinement around the best grid point.
        grid = np.linspace(math.log(free.N) - math.log(1e4), math.log(free.N) + math.log(1e2), 601)
        vals = loss_at(grid)
        i = int(np.argmin(vals))
        lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
        res = optimize.minimize_scalar(loss_at, bounds=(lo, hi), method="bounded", options={"xatol": 1e-9})
        N = float(math.exp(res.x))
        D = C / (k * N)
        loss = float(loss_at(res.x))
        return DataConstrainedAllocation(
            N=N, D=D, U=U, C=C, loss=loss, epochs=D / U, tokens_per_param=D / N,
            effective_N=float(self.effective_params(N, D, U)), effective_D=float(self.effective_data(D, U)),
            unconstrained=free, loss_penalty=loss - free.loss, law=self.name)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "rd_star": self.rd_star, "rn_star": self.rn_star,
                "base": self.base.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DataConstrainedLaw":
        if not isinstance(d, dict) or not {"rd_star", "rn_star", "base"} <= set(d):
            raise UserError("a data-constrained law needs keys rd_star, rn_star and base; regenerate it")
        return cls(ScalingLaw.from_dict(d["base"], where="base law"), d["rd_star"], d["rn_star"],
                   name=str(d.get("name") or ""), source=str(d.get("source") or ""))


@dataclass
class DataConstrainedAllocation:
    """Allocation under a unique-token limit U (nats, params, tokens, FLOPs).

    ``epochs`` = D / U; ``loss_penalty`` = loss - unconstrained.loss (>= 0: what the data
    limit costs at this compute); ``effective_N`` / ``effective_D`` are N' and D'.
    """

    N: float
    D: float
    U: float
    C: float
    loss: float
    epochs: float
    tokens_per_param: float
    effective_N: float
    effective_D: float
    unconstrained: Allocation
    loss_penalty: float
    law: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["unconstrained"] = self.unconstrained.to_dict()
        return d


MUENNIGHOFF2023 = DataConstrainedLaw(
    base=PRESETS["muennighoff2023"], rd_star=15.387756, rn_star=5.309743, name="muennighoff2023",
    source="Muennighoff et al. 2023 (arXiv:2305.16264), Sec. 3; values from huggingface/datablations "
           "README 'Parametric Fit' (R_D* = 15.387756, R_N* = 5.309743)")


def data_constrained_law(base: ScalingLaw | None = None, rd_star: float = MUENNIGHOFF2023.rd_star,
                         rn_star: float = MUENNIGHOFF2023.rn_star) -> DataConstrainedLaw:
    """Muennighoff's decay constants on top of any base law (default: their own C4 fit)."""
    if base is None:
        return dataclasses.replace(MUENNIGHOFF2023)
    return DataConstrainedLaw(base, rd_star, rn_star, name=f"{base.name}+muennighoff2023",
                              source=f"base: {base.source}; R_D*, R_N*: {MUENNIGHOFF2023.source}")


# -- fitting ------------------------------------------------------------------------------------
def _huber(r: np.ndarray, delta: float) -> np.ndarray:
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


@dataclass
class DataConstrainedFit:
    """Result of :func:`fit_data_constrained`: the law, the summed Huber objective, the rows used."""

    law: DataConstrainedLaw
    objective: float
    n_rows: int
    fit_base: bool
    converged: bool
    starts: int
    info: dict[str, Any] = field(default_factory=dict)


def fit_data_constrained(N, D, U, loss, *, base: ScalingLaw | None = None, fit_base: bool = False,
                         rd_star: float | None = None, rn_star: float | None = None,
                         delta: float = 1e-3) -> DataConstrainedFit:
    """Fit R_D*, R_N* (and with ``fit_base`` the base E, A, B, alpha, beta) to runs (N, D, U, loss).

    ``rd_star`` / ``rn_star``: hold that constant fixed and fit only the other. On the 182
    datablations runs the objective is nearly flat along a valley in (R_D*, R_N*) (the best
    joint pair, about (95, 1.7), beats the published (15.4, 5.3) by only ~0.1% of the objective),
    so a joint fit does not pin both down; with R_D* fixed at 15.39 the fitted R_N* is 5.31.

    Objective: sum of Huber_delta(log L_pred - log L_obs) (Hoffmann et al. 2022 App. D.2, used by
    Muennighoff et al. 2023 App. A). R_D*, R_N* are optimised in log space; with ``fit_base`` the
    base law is parameterised as in Chinchilla (a = log A, b = log B, e = log E). Multi-start:
    R_D*, R_N* in {1, 4, 16, 64} (x a small base grid when ``fit_base``), L-BFGS-B with tolerances
    tight enough for an objective of order 1e-3 (default tolerances stop early: a known trap).
    """
    arrs = [np.asarray(x, dtype=float).ravel() for x in (N, D, U, loss)]
    n = len(arrs[0])
    if any(len(a) != n for a in arrs):
        raise UserError("N, D, U and loss must have the same length")
    ok = np.all([np.isfinite(a) & (a > 0) for a in arrs], axis=0)
    if ok.sum() < (7 if fit_base else 2) + 1:
        raise UserError(f"only {int(ok.sum())} usable rows (positive, finite N, D, U, loss); need more runs")
    Nv, Dv, Uv, Lv = (a[ok] for a in arrs)
    logL = np.log(Lv)
    base = base if base is not None else PRESETS["muennighoff2023"]

    fixed = {"rd": None if rd_star is None else math.log(positive_number(rd_star, "R_D*")),
             "rn": None if rn_star is None else math.log(positive_number(rn_star, "R_N*"))}
    free_r = [k for k in ("rd", "rn") if fixed[k] is None]

    def make(theta) -> DataConstrainedLaw:
        theta = list(theta)
        if fit_base:
            a, b, e, al, be = theta[:5]
            theta = theta[5:]
            bl = ScalingLaw(math.exp(e), math.exp(a), math.exp(b), al, be)
        else:
            bl = base
        r = dict(fixed)
        for k, v in zip(free_r, theta):
            r[k] = v
        return DataConstrainedLaw(bl, math.exp(r["rd"]), math.exp(r["rn"]))

    def objective(theta) -> float:
        try:
            law = make(theta)
        except (UserError, OverflowError):
            return 1e3
        pred = law.predict(Nv, Dv, Uv)
        if not np.all(np.isfinite(pred)) or np.any(pred <= 0):
            return 1e3
        return float(np.sum(_huber(np.log(pred) - logL, delta)))

    rstarts = [math.log(v) for v in (1.0, 4.0, 16.0, 64.0)]
    r_grid = list(itertools.product(*([rstarts] * len(free_r))))
    r_bounds = [(-5.0, 8.0)] * len(free_r)
    if fit_base:
        base_starts = [(math.log(base.A), math.log(base.B), math.log(base.E), base.alpha, base.beta)]
        base_starts += [(a, b, 0.5, al, al) for a in (5.0, 7.0) for b in (5.0, 7.0) for al in (0.3, 0.4)]
        starts = [(*bs, *rs) for bs in base_starts for rs in r_grid]
        bounds = [(-5, 30), (-5, 30), (-3, 3), (0.01, 2.0), (0.01, 2.0)] + r_bounds
    else:
        starts = r_grid
        bounds = r_bounds
    if not starts or not starts[0]:
        raise UserError("nothing to fit: both R_D* and R_N* are fixed and fit_base is off")
    best = None
    for x0 in starts:
        res = optimize.minimize(objective, np.array(x0, dtype=float), method="L-BFGS-B", bounds=bounds,
                                options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 5000})
        if best is None or res.fun < best.fun:
            best = res
    law = make(best.x)
    law.name = "muennighoff2023-refit"
    law.source = (f"refit of Muennighoff et al. 2023's data-constrained law on {n} runs "
                  f"({'base and decay constants' if fit_base else 'decay constants; base ' + (base.name or 'given')})")
    return DataConstrainedFit(law=law, objective=float(best.fun), n_rows=int(ok.sum()), fit_base=fit_base,
                              converged=bool(best.success), starts=len(starts),
                              info={"n_dropped": int(n - ok.sum()), "delta": delta, "message": str(best.message)})
