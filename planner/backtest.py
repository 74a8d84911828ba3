"""The backtest: how well a fit extrapolates, measured on the runs it was given.

For each factor k (default 3, 10, 30, 100): fit on the runs with compute C <= C_max / k, predict
every other run and report, per held-out run, its relative error, whether the measured loss lies
inside the 95 % *prediction* interval and its *extrapolation factor* (its compute / the largest
fitted compute). The pieces are those of the held-out check (:mod:`planner.holdout`): the rows
are chosen by :func:`planner.holdout.select_heldout` and each split is a
:class:`planner.holdout.HoldoutReport` from :func:`planner.holdout.evaluate_heldout`.

Conventions:

* C is the runs table's compute column (``planner.runs.load_runs``: C = 6 N D in the fit's N).
  A run at exactly C_max / k is fitted, not held out.
* ``rel_error`` = (predicted - measured) / measured; summaries use |rel_error|.
* A factor is skipped (with the reason recorded) when fewer than :data:`MIN_FIT_ROWS` runs lie at
  or below C_max / k (the 5-parameter law needs 7), or when it fits exactly the same runs as a
  smaller factor already did.
* The error-vs-extrapolation curve pools the predictions of every split and bins them by their
  extrapolation factor at :data:`BIN_EDGES` (each prediction is one (split, run) pair, so a run
  can count once per split).
* Goal (issue 16): every prediction at >= 30x (and 100x) within 1.5 % and >= 90 % of them inside
  the 95 % prediction interval (:data:`GOAL_MAX_ABS_REL_ERROR`, :data:`GOAL_FRAC_INSIDE`).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from planner.errors import UserError
from planner.holdout import (GOAL_MAX_ABS_REL_ERROR, INTERVAL_BOOTSTRAP, MIN_FIT_ROWS, HeldOutRow, HoldoutReport,
                             evaluate_heldout, select_heldout)

DEFAULT_FACTORS = (3.0, 10.0, 30.0, 100.0)
GOAL_FRAC_INSIDE = 0.90
#: The extrapolation factors the goal is stated at (issue 16, item 4).
GOAL_FACTORS = (30.0, 100.0)
#: Edges of the extrapolation-factor bins of the error curve (the last bin is open).
BIN_EDGES = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
METHOD = ("fit on the runs with C <= C_max / k (same settings as the fit), predict the others; "
          "95% prediction interval = bootstrap law x resampled residual")


@dataclass
class BacktestSplit:
    """One factor k: the fit on C <= C_max / k and its predictions (``report``), or why skipped."""

    factor: float
    cutoff_flops: float
    n_fit: int
    n_heldout: int
    report: HoldoutReport | None = None
    skipped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {"factor": self.factor, "cutoff_flops": self.cutoff_flops, "n_fit": self.n_fit,
             "n_heldout": self.n_heldout}
        if self.skipped:
            d["skipped"] = self.skipped
        if self.report is not None:
            d["report"] = self.report.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Any, where: str) -> "BacktestSplit":
        if not isinstance(d, dict) or "factor" not in d:
            raise UserError(f"{where} must be an object with a 'factor'; rerun `scaleplan fit`")
        report = HoldoutReport.from_dict(d["report"], where=f"{where}: report") if d.get("report") else None
        return cls(factor=float(d["factor"]), cutoff_flops=float(d.get("cutoff_flops", math.nan)),
                   n_fit=int(d.get("n_fit") or 0), n_heldout=int(d.get("n_heldout") or 0), report=report,
                   skipped=d.get("skipped"))


@dataclass
class ErrorSummary:
    """|error| and interval coverage of the predictions whose extrapolation factor is in [lo, hi)."""

    lo: float
    hi: float | None
    n: int
    median_factor: float
    max_abs_rel_error: float
    mean_abs_rel_error: float
    frac_inside_interval: float

    @classmethod
    def of(cls, rows: list[HeldOutRow], lo: float, hi: float | None) -> "ErrorSummary":
        err = np.abs([r.rel_error for r in rows])
        return cls(lo=lo, hi=hi, n=len(rows), median_factor=float(np.median([r.compute_vs_max_fitted for r in rows])),
                   max_abs_rel_error=float(err.max()), mean_abs_rel_error=float(err.mean()),
                   frac_inside_interval=float(np.mean([r.inside_interval for r in rows])))

    def label(self) -> str:
        return f"{self.lo:g}-{self.hi:g}x" if self.hi is not None else f">= {self.lo:g}x"

    def goal_met(self) -> bool:
        return self.max_abs_rel_error <= GOAL_MAX_ABS_REL_ERROR and self.frac_inside_interval >= GOAL_FRAC_INSIDE


@dataclass
class Backtest:
    """The splits of a backtest; the curve and goal numbers are derived from their rows.

    ``law_max_fitted_flops``: the largest compute of the *full* fit (the law a plan uses), so a
    plan's N*·D* compute can be turned into an extrapolation factor comparable with the curve.
    """

    splits: list[BacktestSplit]
    max_flops: float
    law_max_fitted_flops: float | None = None
    method: str = METHOD
    meta: dict[str, Any] = field(default_factory=dict)

    def predictions(self) -> list[HeldOutRow]:
        """Every (split, held-out run) prediction."""
        return [r for s in self.splits if s.report is not None for r in s.report.rows]

    def curve(self) -> list[ErrorSummary]:
        """|error| and coverage per extrapolation-factor bin (:data:`BIN_EDGES`), empty bins left out."""
        rows = self.predictions()
        edges = list(BIN_EDGES) + [None]
        out = []
        for lo, hi in zip(edges[:-1], edges[1:]):
            sel = [r for r in rows if r.compute_vs_max_fitted >= lo and (hi is None or r.compute_vs_max_fitted < hi)]
            if sel:
                out.append(ErrorSummary.of(sel, lo, hi))
        return out

    def at_least(self, factor: float) -> ErrorSummary | None:
        """The predictions at >= ``factor`` x the largest fitted compute (None when there are none)."""
        sel = [r for r in self.predictions() if r.compute_vs_max_fitted >= factor]
        return ErrorSummary.of(sel, float(factor), None) if sel else None

    def summary(self) -> dict[str, Any]:
        """What a plan needs (``load_law`` puts it in ``law.meta["backtest"]``)."""
        rows = self.predictions()
        return {"law_max_fitted_flops": self.law_max_fitted_flops,
                "max_factor": max((r.compute_vs_max_fitted for r in rows), default=None),
                "curve": [asdict(b) for b in self.curve()]}

    def split_table(self) -> list[dict[str, Any]]:
        """One row per factor: runs fitted / held out, max |error|, coverage, largest factor reached."""
        out = []
        for s in self.splits:
            row = {"k": s.factor, "fitted": s.n_fit, "held_out": s.n_heldout}
            r = s.report
            if r is None:
                row["skipped"] = s.skipped
            else:
                row.update(converged=bool((r.fit or {}).get("converged", True)),
                           max_abs_rel_error=r.max_abs_rel_error, mean_abs_rel_error=r.mean_abs_rel_error,
                           inside=int(sum(x.inside_interval for x in r.rows)),
                           reach=max(x.compute_vs_max_fitted for x in r.rows))
                if (r.fit or {}).get("selected"):
                    row["selected"] = r.fit["selected"]
            out.append(row)
        return out

    def goal(self) -> dict[str, Any]:
        """The goal numbers at >= 30x and >= 100x (None where no prediction reaches that far)."""
        goal: dict[str, Any] = {"max_abs_rel_error": GOAL_MAX_ABS_REL_ERROR, "frac_inside_interval": GOAL_FRAC_INSIDE}
        for f in GOAL_FACTORS:
            s = self.at_least(f)
            goal[f"{f:g}x"] = None if s is None else {**asdict(s), "met": s.goal_met()}
        return goal

    def to_dict(self, rows: bool = True) -> dict[str, Any]:
        """fit.json's ``backtest`` block (curve and goal are derived, written for readers); without
        ``rows`` the per-run predictions are left out (the CLI's printed summary)."""
        splits = [s.to_dict() for s in self.splits] if rows else self.split_table()
        return {"method": self.method, "max_flops": self.max_flops, "law_max_fitted_flops": self.law_max_fitted_flops,
                "splits": splits, "curve": [asdict(b) for b in self.curve()],
                "goal": self.goal(), "meta": self.meta}

    @classmethod
    def from_dict(cls, d: Any, *, where: str = "backtest") -> "Backtest":
        if not isinstance(d, dict) or not isinstance(d.get("splits"), list):
            raise UserError(f"{where} must be an object with a 'splits' list; rerun `scaleplan fit`")
        splits = [BacktestSplit.from_dict(s, f"{where}: split {i + 1}") for i, s in enumerate(d["splits"])]
        lm = d.get("law_max_fitted_flops")
        return cls(splits=splits, max_flops=float(d.get("max_flops", math.nan)),
                   law_max_fitted_flops=None if lm is None else float(lm), method=str(d.get("method") or METHOD),
                   meta=dict(d.get("meta") or {}))


def parse_factors(text: str) -> tuple[float, ...]:
    """``"3,10,30,100"`` -> (3.0, 10.0, 30.0, 100.0); UserError unless every factor is a number > 1."""
    try:
        factors = tuple(float(t) for t in str(text).split(",") if t.strip())
    except ValueError:
        raise UserError(f"backtest factors must be numbers separated by commas (e.g. 3,10,30,100), got {text!r}") \
            from None
    if not factors or not all(math.isfinite(f) and f > 1 for f in factors):
        raise UserError(f"backtest factors must be numbers > 1 (e.g. 3,10,30,100), got {text!r}")
    return tuple(sorted(set(factors)))


def run_backtest(fitter, N, D, L, C, factors=DEFAULT_FACTORS, *, law_max_fitted_flops: float | None = None,
                 run_ids=None, n_jobs: int = 1, progress: bool = False) -> Backtest:
    """Backtest ``fitter``'s settings on the rows (N, D, L, C): one refit per factor.

    ``fitter`` is a :class:`planner.fit.ChinchillaFitter`; each split fits ``fitter.clone(...)``:
    the same solver settings, no row dropping or holding out (pass the rows the fit kept), and
    ``fitter.bootstrap`` or :data:`planner.holdout.INTERVAL_BOOTSTRAP` resamples behind the
    prediction intervals, refitted in ``n_jobs`` processes (default 1: for a few hundred resamples
    of a few hundred rows, spawning workers costs more than it saves; benchmarks/bench_backtest.py).
    """
    overrides = {"drop_top_loss": 0, "min_tokens_per_param": None, "min_compute": None, "holdout_top_compute": None,
                 "progress": False,
                 "bootstrap": int(fitter.bootstrap) or INTERVAL_BOOTSTRAP, "n_jobs": int(n_jobs)}
    N, D, L, C = (np.asarray(v, dtype=float).reshape(-1) for v in (N, D, L, C))
    ids = None if run_ids is None else np.asarray([str(i) for i in run_ids], dtype=object)
    c_max = float(C.max())
    splits: list[BacktestSplit] = []
    seen: dict[int, float] = {}
    from tqdm.auto import tqdm

    for k in tqdm(sorted(float(f) for f in factors), desc="backtest refits", unit="split", disable=not progress):
        cutoff = c_max / k
        n_fit = int((C <= cutoff).sum())
        split = BacktestSplit(factor=k, cutoff_flops=cutoff, n_fit=n_fit, n_heldout=int(C.size - n_fit))
        splits.append(split)
        if n_fit < MIN_FIT_ROWS:
            split.skipped = f"only {n_fit} runs at or below C_max/{k:g} (need {MIN_FIT_ROWS})"
            continue
        if n_fit in seen:
            split.skipped = f"fits the same {n_fit} runs as k = {seen[n_fit]:g}"
            continue
        seen[n_fit] = k
        held = select_heldout(C, split.n_heldout)
        fit_mask = np.ones(C.size, dtype=bool)
        fit_mask[held] = False
        sub = fitter.clone(**overrides).fit(N[fit_mask], D[fit_mask], L[fit_mask])
        split.report = evaluate_heldout(sub.law_, N[held], D[held], L[held], C[held], n_fit=n_fit,
                                        max_fitted_flops=float(C[fit_mask].max()),
                                        run_ids=None if ids is None else ids[held])
        split.report.fit = {**sub.params_, "converged": sub.converged_}
        if getattr(sub, "selection_", None):  # --select: the configuration this split's inner backtest chose
            split.report.fit["selected"] = sub.selection_["chosen"]
    return Backtest(splits=splits, max_flops=c_max, law_max_fitted_flops=law_max_fitted_flops)


__all__ = ["Backtest", "BacktestSplit", "ErrorSummary", "run_backtest", "parse_factors", "DEFAULT_FACTORS",
           "GOAL_FRAC_INSIDE", "BIN_EDGES"]
