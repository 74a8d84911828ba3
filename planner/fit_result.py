"""FitResult: the one writer and reader of fit.json (an Approach-3 fit of L(N, D)).

``ChinchillaFitter.result()`` builds one; ``planner.laws.load_law`` reads fit.json through
:meth:`FitResult.from_dict`. The keys and their order are those of docs/CONTRACTS.md:

    approach, E, A, B, alpha, beta, ci, n_rows, n_dropped, objective, converged, grad_norm,
    agreement, bootstrap {n, converged_frac, samples}, warnings, meta, [holdout], [at_budget], [backtest]

Conventions: loss in nats, N parameters (the column named in ``meta.n_col``), D tokens, C FLOPs
(C = 6 N D). ``ci``: 95 % percentile intervals of each parameter over the bootstrap refits.
``holdout``: a :class:`planner.holdout.HoldoutReport`. ``at_budget`` (``scaleplan fit --budget``):
the compute-optimal allocation with N*/D* written as ``N_opt``/``D_opt``; its ``ci.loss`` is a
*prediction* interval (bootstrap law x resampled log residual), its N*/D* intervals parameter
intervals. ``backtest``: a :class:`planner.backtest.Backtest` (fit on C <= C_max/k, predict the
rest). Older or hand-written files may lack every key but E, A, B, alpha, beta.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from planner.backtest import Backtest
from planner.holdout import HoldoutReport
from planner.scaling_law import PARAM_NAMES, Allocation, ScalingLaw

#: fit.json's names for the allocation fields of ``at_budget``.
AT_BUDGET_KEYS = {"N": "N_opt", "D": "D_opt", "tokens_per_param": "tokens_per_param", "loss": "loss"}


@dataclass
class FitResult:
    """An Approach-3 fit: the law (with bootstrap samples) and the fit's diagnostics."""

    law: ScalingLaw
    ci: dict[str, list[float]] = field(default_factory=dict)
    n_rows: int | None = None
    n_dropped: int = 0
    objective: float | None = None
    converged: bool | None = None
    grad_norm: float | None = None
    agreement: dict[str, Any] = field(default_factory=dict)
    bootstrap_converged_frac: float | None = None
    warnings: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    holdout: HoldoutReport | None = None
    at_budget: Allocation | None = None
    approach: int = 3
    backtest: Backtest | None = None

    def to_dict(self) -> dict[str, Any]:
        """The fit.json payload."""
        law = self.law
        d: dict[str, Any] = {"approach": self.approach, **{k: getattr(law, k) for k in PARAM_NAMES},
                             "ci": self.ci, "n_rows": self.n_rows, "n_dropped": self.n_dropped,
                             "objective": self.objective, "converged": self.converged, "grad_norm": self.grad_norm,
                             "agreement": self.agreement,
                             "bootstrap": {"n": 0 if law.samples is None else int(law.samples.shape[0]),
                                           "converged_frac": self.bootstrap_converged_frac,
                                           "samples": [] if law.samples is None else law.samples.tolist()},
                             "warnings": list(self.warnings), "meta": self.meta}
        if self.holdout is not None:
            d["holdout"] = self.holdout.to_dict()
        if self.at_budget is not None:
            d["at_budget"] = at_budget_dict(self.at_budget)
        if self.backtest is not None:
            d["backtest"] = self.backtest.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Any, *, where: str = "fit.json") -> "FitResult":
        """Read a fit.json payload; UserError (from :class:`ScalingLaw`) when the law is unusable."""
        law = ScalingLaw.from_dict(d, where=where)
        boot = d.get("bootstrap") if isinstance(d.get("bootstrap"), dict) else {}
        holdout = HoldoutReport.from_dict(d["holdout"], where=f"{where}: holdout") if d.get("holdout") else None
        at_budget = _allocation_from(d["at_budget"]) if isinstance(d.get("at_budget"), dict) else None
        backtest = Backtest.from_dict(d["backtest"], where=f"{where}: backtest") if d.get("backtest") else None
        return cls(law=law, ci=dict(d.get("ci") or {}), n_rows=d.get("n_rows"), n_dropped=int(d.get("n_dropped") or 0),
                   objective=d.get("objective"), converged=d.get("converged"), grad_norm=d.get("grad_norm"),
                   agreement=dict(d.get("agreement") or {}), bootstrap_converged_frac=boot.get("converged_frac"),
                   warnings=[str(w) for w in d.get("warnings") or []], meta=dict(d.get("meta") or {}),
                   holdout=holdout, at_budget=at_budget, approach=int(d.get("approach") or 3), backtest=backtest)


def at_budget_dict(a: Allocation) -> dict[str, Any]:
    """fit.json's ``at_budget`` block: C, N_opt, D_opt, tokens_per_param, loss and their ci."""
    out: dict[str, Any] = {"C": float(a.C), **{AT_BUDGET_KEYS[k]: float(getattr(a, k)) for k in ("N", "D")},
                           "tokens_per_param": float(a.tokens_per_param), "loss": float(a.loss)}
    out["ci"] = {AT_BUDGET_KEYS[k]: v for k, v in a.ci.items() if k in AT_BUDGET_KEYS}
    return out


def _allocation_from(d: dict) -> Allocation:
    names = {v: k for k, v in AT_BUDGET_KEYS.items()}
    return Allocation(N=d["N_opt"], D=d["D_opt"], C=d["C"], loss=d["loss"], tokens_per_param=d["tokens_per_param"],
                      ci={names[k]: v for k, v in (d.get("ci") or {}).items() if k in names},
                      interval="prediction")


__all__ = ["FitResult", "at_budget_dict", "AT_BUDGET_KEYS"]
