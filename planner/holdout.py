"""The held-out extrapolation check: fit on all but the highest-compute runs, predict those.

One implementation for ``scaleplan fit --holdout-top-compute`` (the fitter's
``holdout_top_compute`` option) and for the ladder's check (``holdout.json``): select the
held-out rows (:func:`select_heldout`), fit on the rest, and report each held-out run's
measured and predicted loss with the 95 % *prediction* interval of the law (bootstrap law x a
resampled log residual, :meth:`planner.scaling_law.ScalingLaw.predict`) as a
:class:`HoldoutReport`, the one schema of ``holdout.json`` and of fit.json's ``"holdout"``.

Conventions:

* Loss in nats per token. ``N`` is the parameter count the law is fitted on (the ladder uses
  non-embedding parameters), ``D`` tokens, ``flops`` the runs table's training FLOPs (the ladder:
  6 N_total D; the fitter's option: 6 N D), used to rank runs by compute.
* ``rel_error`` = (predicted - measured) / measured (signed); the summary errors are absolute.
* Held out: the ``n_top`` highest-compute *eligible* rows (ladder rows; every row for the fitter)
  plus every ineligible row (the ladder's ``holdout_extra`` runs, trained for this check).
* Goal: max |error| <= 1.5 % (:data:`GOAL_MAX_ABS_REL_ERROR`), the project's target for the
  ladder's extrapolation to >= 4x its largest fitted compute (issue 6); reported met or missed.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from planner import __version__
from planner.errors import UserError
from planner.io import atomic_write, read_yaml, write_json
from planner.runs import MIN_ROWS_APPROACH3, load_runs

GOAL_MAX_ABS_REL_ERROR = 0.015
#: The fewest runs the held-out check fits on (the 5 free parameters of the law + 2).
MIN_FIT_ROWS = MIN_ROWS_APPROACH3
#: Top-compute ladder runs are held out only while this many ladder runs stay in the fit.
MIN_LADDER_ROWS_KEPT = MIN_FIT_ROWS + 1
DEFAULT_HOLDOUT_TOP = 2
#: Bootstrap resamples behind the prediction intervals when the fit itself asks for none.
INTERVAL_BOOTSTRAP = 200
FILES = {"report": "holdout.json", "html": "holdout.html", "figure": "holdout.fig.json"}


@dataclass
class HeldOutRow:
    """One held-out run: measured vs predicted loss (nats) and the 95 % prediction interval."""

    run_id: str | None
    role: str | None
    N: float
    D: float
    flops: float
    compute_vs_max_fitted: float
    measured: float
    predicted: float
    lo: float
    hi: float
    rel_error: float
    inside_interval: bool


@dataclass
class HoldoutReport:
    """The held-out check's result; summary numbers are derived from ``rows``.

    ``fit``: the law fitted on the remaining runs (parameters, ci, converged, warnings) when the
    report stands alone (holdout.json); None inside fit.json, which is that fit.
    """

    n_fit: int | None
    rows: list[HeldOutRow]
    max_fitted_flops: float
    n_col: str | None = None
    d_col: str | None = None
    loss_col: str | None = None
    fit: dict[str, Any] | None = None
    goal_max_abs_rel_error: float = GOAL_MAX_ABS_REL_ERROR
    method: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_heldout(self) -> int:
        return len(self.rows)

    @property
    def max_abs_rel_error(self) -> float:
        return float(np.max(np.abs([r.rel_error for r in self.rows])))

    @property
    def mean_abs_rel_error(self) -> float:
        return float(np.mean(np.abs([r.rel_error for r in self.rows])))

    @property
    def frac_inside_interval(self) -> float:
        return float(np.mean([r.inside_interval for r in self.rows]))

    @property
    def goal_met(self) -> bool:
        return bool(self.max_abs_rel_error <= self.goal_max_abs_rel_error)

    def to_dict(self) -> dict[str, Any]:
        """The holdout.json / fit.json "holdout" payload (summary numbers included)."""
        d: dict[str, Any] = {"n_fit": self.n_fit, "n_heldout": self.n_heldout, "n_col": self.n_col,
                             "d_col": self.d_col, "loss_col": self.loss_col, "max_fitted_flops": self.max_fitted_flops}
        if self.fit is not None:
            d["fit"] = self.fit
        d.update({"max_abs_rel_error": self.max_abs_rel_error, "mean_abs_rel_error": self.mean_abs_rel_error,
                  "frac_inside_interval": self.frac_inside_interval,
                  "goal": {"max_abs_rel_error": self.goal_max_abs_rel_error, "met": self.goal_met},
                  "rows": [asdict(r) for r in self.rows], "method": self.method})
        if self.meta:
            d["meta"] = self.meta
        return d

    @classmethod
    def from_dict(cls, d: Any, *, where: str = "holdout") -> "HoldoutReport":
        """Read :meth:`to_dict`'s payload (or the pre-0.2 fit.json "holdout" block)."""
        if not isinstance(d, dict) or not isinstance(d.get("rows"), list) or not d["rows"]:
            raise UserError(f"{where} must be an object with a non-empty 'rows' list; rerun the held-out check")
        if "max_rel_error" in d:
            return _from_fit_holdout_v1(d)
        names = [f.name for f in fields(HeldOutRow)]
        try:
            rows = [HeldOutRow(**{k: r.get(k) for k in names}) for r in d["rows"]]
        except AttributeError:
            raise UserError(f"{where}: every row must be an object; rerun the held-out check") from None
        goal = d.get("goal") or {}
        return cls(n_fit=d.get("n_fit"), rows=rows, max_fitted_flops=float(d.get("max_fitted_flops", math.nan)),
                   n_col=d.get("n_col"), d_col=d.get("d_col"), loss_col=d.get("loss_col"), fit=d.get("fit"),
                   goal_max_abs_rel_error=float(goal.get("max_abs_rel_error", GOAL_MAX_ABS_REL_ERROR)),
                   method=str(d.get("method") or ""), meta=dict(d.get("meta") or {}))


def _from_fit_holdout_v1(d: dict) -> HoldoutReport:
    """The fitter's old block: n, max_rel_error, rows of N, D, loss, pred, lo, hi (C = 6 N D)."""
    rows = []
    for r in d["rows"]:
        N, D, loss, pred, lo, hi = (float(r[k]) for k in ("N", "D", "loss", "pred", "lo", "hi"))
        rows.append(HeldOutRow(run_id=None, role=None, N=N, D=D, flops=6.0 * N * D, compute_vs_max_fitted=math.nan,
                               measured=loss, predicted=pred, lo=lo, hi=hi, rel_error=(pred - loss) / loss,
                               inside_interval=bool(lo <= loss <= hi)))
    return HoldoutReport(n_fit=None, rows=rows, max_fitted_flops=math.nan)


# ----------------------------------------------------------------------------- select and report
def select_heldout(flops, n_top: int, eligible=None) -> np.ndarray:
    """Row indices held out: the ``n_top`` highest-``flops`` eligible rows (ascending compute,
    ties in input order), then every ineligible row in input order."""
    flops = np.asarray(flops, dtype=float)
    eligible = np.ones(flops.size, dtype=bool) if eligible is None else np.asarray(eligible, dtype=bool)
    candidates = np.flatnonzero(eligible)
    ranked = candidates[np.argsort(flops[candidates], kind="stable")]
    top = ranked[ranked.size - int(n_top):] if n_top > 0 else ranked[:0]
    return np.concatenate([top, np.flatnonzero(~eligible)]).astype(int)


def evaluate_heldout(law, N, D, measured, flops, *, n_fit: int, max_fitted_flops: float,
                     run_ids=None, roles=None) -> HoldoutReport:
    """Predict the held-out runs with ``law`` (a ScalingLaw with samples and residuals)."""
    N, D, measured, flops = (np.asarray(v, dtype=float).reshape(-1) for v in (N, D, measured, flops))
    pred = law.predict(N, D, interval="prediction")
    rel = (pred.value - measured) / measured
    ids = [None] * N.size if run_ids is None else list(run_ids)
    roles = [None] * N.size if roles is None else list(roles)
    rows = [HeldOutRow(run_id=ids[i], role=roles[i], N=float(N[i]), D=float(D[i]), flops=float(flops[i]),
                       compute_vs_max_fitted=float(flops[i]) / max_fitted_flops, measured=float(measured[i]),
                       predicted=float(pred.value[i]), lo=float(pred.lo[i]), hi=float(pred.hi[i]),
                       rel_error=float(rel[i]), inside_interval=bool(pred.lo[i] <= measured[i] <= pred.hi[i]))
            for i in range(N.size)]
    return HoldoutReport(n_fit=int(n_fit), rows=rows, max_fitted_flops=float(max_fitted_flops))


def describe_method(fitter) -> str:
    """One line naming the fit and the interval, for the report's ``method``."""
    mantissa, exponent = f"{float(fitter.delta):e}".split("e")
    delta = f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"  # 0.001 -> 1e-3
    return (f"fit on all ok runs except the held-out ones (Chinchilla Approach 3, Huber delta {delta}, "
            f"{int(fitter.bootstrap) or INTERVAL_BOOTSTRAP} bootstrap resamples); 95% prediction interval = "
            "bootstrap law x resampled residual")


# ----------------------------------------------------------------------------- the ladder's check
def read_study_runs(study: Path, n_col: str) -> pd.DataFrame:
    """The ok rows of ``study/runs.csv`` (planner.runs.load_runs: adds N, D, loss, C columns)."""
    path = study / "runs.csv"
    if not path.is_file():
        raise UserError(f"{path} not found; run `scaleplan ladder --study {study} ...` first")
    runs = load_runs(path, n_col=n_col, d_col="tokens", loss_col="final_val_loss", min_rows=1)
    if "role" not in runs.columns:
        runs["role"] = "ladder"
    if "flops" not in runs.columns:
        runs["flops"] = runs["C"]
    return runs


def _study_holdout_top(study: Path) -> int:
    st = read_yaml(study / "study.yaml", "study.yaml") if (study / "study.yaml").is_file() else {}
    return int(((st or {}).get("ladder") or {}).get("holdout_top", DEFAULT_HOLDOUT_TOP))


def holdout_check(study: str | Path, *, fitter, n_col: str = "non_embedding_params", top: int | None = None,
                  write: bool = True) -> HoldoutReport:
    """Fit ``fitter`` (a :class:`planner.fit.ChinchillaFitter`) on all but the highest-compute
    runs of ``study/runs.csv``; predict those and report the errors.

    Held out: every ``holdout_extra`` row plus the ``top`` ladder rows of highest ``flops``
    (default: study.yaml ``ladder.holdout_top``), as long as :data:`MIN_LADDER_ROWS_KEPT` ladder
    rows remain. Writes ``holdout.json``, ``holdout.html`` and ``holdout.fig.json`` unless
    ``write`` is False.
    """
    study = Path(study)
    runs = read_study_runs(study, n_col)
    top = _study_holdout_top(study) if top is None else int(top)
    ladder = (runs["role"] == "ladder").to_numpy()
    n_top = min(top, max(0, int(ladder.sum()) - MIN_LADDER_ROWS_KEPT))
    held_idx = select_heldout(runs["flops"], n_top, eligible=ladder)
    if held_idx.size == 0:
        raise UserError(f"nothing to hold out: the ladder has too few runs (need > {MIN_LADDER_ROWS_KEPT} ok "
                        "ladder runs or a --holdout-extra run)")
    fitted = runs.drop(index=held_idx)
    if len(fitted) < MIN_FIT_ROWS:
        raise UserError(f"only {len(fitted)} ok runs remain to fit; the 5-parameter law needs at least "
                        f"{MIN_FIT_ROWS}")
    fitter.fit(fitted["N"].to_numpy(), fitted["D"].to_numpy(), fitted["loss"].to_numpy())
    held = runs.iloc[held_idx]
    report = evaluate_heldout(fitter.law_, held["N"], held["D"], held["loss"], held["flops"], n_fit=len(fitted),
                              max_fitted_flops=float(fitted["flops"].max()), run_ids=held["run_id"],
                              roles=held["role"])
    report.n_col, report.d_col, report.loss_col = n_col, "tokens", "final_val_loss"
    report.fit = {**fitter.params_, "ci": fitter.ci_, "converged": fitter.converged_, "warnings": fitter.warnings_}
    report.method = describe_method(fitter)
    report.meta = {"scaleplan": __version__, "runs_table": str(study / "runs.csv")}
    if write:
        write_holdout(study, report, fitter.law_, fitted)
    return report


def write_holdout(study: Path, report: HoldoutReport, law, fitted: pd.DataFrame) -> None:
    """holdout.json, and the figure as holdout.fig.json (for the app) and holdout.html."""
    write_json(study / FILES["report"], report.to_dict())
    fig = holdout_figure(law, fitted, report)
    atomic_write(study / FILES["figure"], fig.to_json())
    atomic_write(study / FILES["html"], fig.to_html(include_plotlyjs=True, full_html=True))


def holdout_figure(law, fitted: pd.DataFrame, report: HoldoutReport):
    """Loss vs tokens per size: fitted runs (columns N, D, loss), the law's curves, held-out
    points with their 95 % prediction intervals."""
    import plotly.graph_objects as go

    fig = go.Figure()
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
    h = report.rows
    points = pd.concat([fitted[["N", "D"]].assign(fitted=True),
                        pd.DataFrame({"N": [r.N for r in h], "D": [r.D for r in h], "fitted": False})])
    for i, (n, part) in enumerate(sorted(points.groupby("N"), key=lambda kv: kv[0])):
        color = palette[i % len(palette)]
        d = np.geomspace(part["D"].min() / 1.5, part["D"].max() * 1.5, 60)
        fig.add_trace(go.Scatter(x=d, y=law.predict(np.full_like(d, n), d), mode="lines",
                                 line={"color": color, "dash": "dot"}, name=f"law, N={n:,.0f}"))
        fp = fitted[fitted["N"] == n]
        if len(fp):
            fig.add_trace(go.Scatter(x=fp["D"], y=fp["loss"], mode="markers", marker={"color": color},
                                     name=f"fitted, N={n:,.0f}"))
    fig.add_trace(go.Scatter(
        x=[r.D for r in h], y=[r.predicted for r in h], mode="markers", name="held out: predicted, 95% PI",
        marker={"symbol": "line-ew-open", "size": 14, "color": "gray"},
        error_y={"type": "data", "symmetric": False, "array": [max(0.0, r.hi - r.predicted) for r in h],
                 "arrayminus": [max(0.0, r.predicted - r.lo) for r in h]}))
    fig.add_trace(go.Scatter(
        x=[r.D for r in h], y=[r.measured for r in h], mode="markers", name="held out: measured",
        marker={"symbol": "star", "size": 13, "color": "black"},
        text=[f"{r.run_id}: predicted {r.predicted:.4f}, error {r.rel_error:+.2%}" for r in h]))
    fig.update_layout(title=f"Held-out check: max |error| {report.max_abs_rel_error:.2%} "
                            f"({sum(r.inside_interval for r in h)}/{len(h)} inside the 95% interval)",
                      xaxis={"title": "tokens D", "type": "log"}, yaxis={"title": "final val loss (nats/token)"})
    return fig


__all__ = ["HoldoutReport", "HeldOutRow", "select_heldout", "evaluate_heldout", "holdout_check", "holdout_figure",
           "write_holdout", "read_study_runs", "GOAL_MAX_ABS_REL_ERROR", "MIN_FIT_ROWS", "INTERVAL_BOOTSTRAP",
           "MIN_LADDER_ROWS_KEPT"]
