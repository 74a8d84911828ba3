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
from planner.errors import UserError
from planner.holdout import HoldoutReport
from planner.scaling_law import FIT_FIX, PARAM_NAMES, Allocation, ScalingLaw
from planner.schema import check_value, show

#: fit.json's names for the allocation fields of ``at_budget``.
AT_BUDGET_KEYS = {"N": "N_opt", "D": "D_opt", "tokens_per_param": "tokens_per_param", "loss": "loss"}
#: The diagnostics' types in fit.json (null where a NaN was written; ``meta`` and ``agreement`` are
#: free-form mappings, read but never executed or exported raw).
_FIELDS: dict[str, Any] = {
    "approach": int, "ci": dict[str, list[float | None]], "n_rows": int | None, "n_dropped": int | None,
    "objective": float | None, "converged": bool | None, "grad_norm": float | None,
    "agreement": dict[str, object] | None, "warnings": list[str] | None, "meta": dict[str, object] | None,
}


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
        """Read a fit.json payload; every key typed (planner/schema.py), UserError naming the first
        wrong one (and, from :class:`ScalingLaw`, when the law is unusable)."""
        law = ScalingLaw.from_dict(d, where=where)
        kw = {k: check_value(d[k], tp, f"{where}.{k}", FIT_FIX) for k, tp in _FIELDS.items() if k in d}
        boot = d.get("bootstrap") or {}
        frac = check_value(boot.get("converged_frac"), float | None, f"{where}.bootstrap.converged_frac", FIT_FIX)
        holdout = HoldoutReport.from_dict(d["holdout"], where=f"{where}: holdout") if d.get("holdout") else None
        at_budget = _allocation_from(d["at_budget"], f"{where}.at_budget") if d.get("at_budget") is not None else None
        backtest = Backtest.from_dict(d["backtest"], where=f"{where}: backtest") if d.get("backtest") else None
        return cls(law=law, ci=dict(kw.get("ci") or {}), n_rows=kw.get("n_rows"), n_dropped=kw.get("n_dropped") or 0,
                   objective=kw.get("objective"), converged=kw.get("converged"), grad_norm=kw.get("grad_norm"),
                   agreement=dict(kw.get("agreement") or {}), bootstrap_converged_frac=frac,
                   warnings=list(kw.get("warnings") or []), meta=dict(kw.get("meta") or {}),
                   holdout=holdout, at_budget=at_budget, approach=kw.get("approach") or 3, backtest=backtest)


def at_budget_dict(a: Allocation) -> dict[str, Any]:
    """fit.json's ``at_budget`` block: C, N_opt, D_opt, tokens_per_param, loss and their ci."""
    out: dict[str, Any] = {"C": float(a.C), **{AT_BUDGET_KEYS[k]: float(getattr(a, k)) for k in ("N", "D")},
                           "tokens_per_param": float(a.tokens_per_param), "loss": float(a.loss)}
    out["ci"] = {AT_BUDGET_KEYS[k]: v for k, v in a.ci.items() if k in AT_BUDGET_KEYS}
    return out


def _allocation_from(d: Any, where: str) -> Allocation:
    """fit.json's ``at_budget`` block read back (numbers checked; its ``ci`` entries may be null)."""
    keys = ("C", "N_opt", "D_opt", "tokens_per_param", "loss")
    if not isinstance(d, dict) or any(k not in d for k in keys):
        raise UserError(f"{where} must be an object with {', '.join(keys)}, got {show(d)}; {FIT_FIX}")
    v = {k: check_value(d[k], float, f"{where}.{k}", FIT_FIX) for k in keys}
    ci = check_value(d.get("ci") or {}, dict[str, list[float | None]], f"{where}.ci", FIT_FIX)
    names = {v: k for k, v in AT_BUDGET_KEYS.items()}
    return Allocation(N=v["N_opt"], D=v["D_opt"], C=v["C"], loss=v["loss"], tokens_per_param=v["tokens_per_param"],
                      ci={names[k]: c for k, c in ci.items() if k in names}, interval="prediction")


__all__ = ["FitResult", "at_budget_dict", "AT_BUDGET_KEYS"]
