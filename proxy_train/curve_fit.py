"""Glue between ladder studies and the loss-curve law (:mod:`planner.curve_law`).

Reads each run's run.json (``curve.train``/``curve.val``, ``config``), rebuilds its LR factors
with :func:`proxy_train.schedules.lr_factor` (the trainer's own schedule), fits one law per size,
and predicts the final validation loss of any (size, tokens, schedule) point.

Conventions:
* Train-curve entry ``[step, tokens, loss]`` is the loss of the batch of update ``step - 1``,
  computed *before* that update: it is the loss after s = step - 1 updates. A validation entry at
  ``step`` is the loss after s = step updates (proxy_train.trainer: ``_timed_step``, ``_eval_point``).
* Fit window: points after at least ``START_FRAC`` of the size's shortest run (and after the
  warmup): the power law in S1 describes the loss after the initial plateau-and-drop, not the
  first few dozen steps from the uniform-prediction loss ln(vocab).
* WSD branches of one stable phase (``branch`` block of run.json) share their curve up to their
  branch point: the longest branch contributes its whole curve, each other branch only the points
  after its ``stable_end_step`` (no point is counted twice).
* Noise scales: train points get :func:`planner.curve_law.noise_scale` of the run's train losses;
  validation points that scale x sqrt(tokens per step / tokens per evaluation) (an evaluation
  averages ``eval_batches`` batches), floored at ``VAL_SIGMA_FLOOR`` nats.
* Predicted points use the ladder's own schedule conventions (proxy_train.ladder_plan): warmup =
  ``warmup_frac`` x steps for cosine, the given WSD warmup steps, cooldown_frac, 0.1 x peak.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from planner.curve_law import CurveLaw, CurveSegment, fit_curve_law, noise_scale
from planner.errors import UserError
from planner.io import read_json
from proxy_train.schedules import lr_factor

START_FRAC = 0.1
VAL_SIGMA_FLOOR = 0.003


def lr_factors(steps: int, *, schedule: str, warmup_steps: int, cooldown_frac: float = 0.2,
               min_lr_frac: float = 0.1, cooldown_shape: str = "1-sqrt") -> np.ndarray:
    """The trainer's LR factor for each of ``steps`` updates (:func:`proxy_train.schedules.lr_factor`)."""
    return np.array([lr_factor(i, steps, schedule=schedule, warmup_steps=warmup_steps, cooldown_frac=cooldown_frac,
                               min_lr_frac=min_lr_frac, cooldown_shape=cooldown_shape) for i in range(steps)])


def run_lr_factors(run: dict) -> np.ndarray:
    """LR factors of a finished run from its run.json (``steps`` and ``config``)."""
    cfg = run.get("config") or {}
    steps = int(run.get("steps") or 0)
    if steps < 1:
        raise UserError(f"run {run.get('run_id')!r} has no step count in run.json; was it trained?")
    warm = cfg.get("warmup_steps")
    if warm is None:
        warm = int(round(float(cfg.get("warmup_frac", 0.0)) * steps))
    return lr_factors(steps, schedule=cfg.get("schedule", "cosine"), warmup_steps=int(warm),
                      cooldown_frac=float(cfg.get("cooldown_frac", 0.2)), min_lr_frac=float(cfg.get("min_lr_frac", 0.1)),
                      cooldown_shape=cfg.get("cooldown_shape", "1-sqrt"))


def _val_sigma(run: dict, train_sigma: float) -> float:
    cfg = run.get("config") or {}
    per_eval = max(1, int(cfg.get("eval_batches", 8)))
    return max(VAL_SIGMA_FLOOR, train_sigma / math.sqrt(per_eval))


def run_segments(run: dict, *, start: int, after: int = 0, label: str = "") -> list[CurveSegment]:
    """Train and validation segments of one run.json, points with s >= ``start`` and s > ``after``."""
    curve = run.get("curve") or {}
    lr = run_lr_factors(run)
    train = np.array([[p[0] - 1, p[2]] for p in curve.get("train", []) if p[2] is not None], dtype=float).reshape(-1, 2)
    val = np.array([[p[0], p[2]] for p in curve.get("val", []) if p[2] is not None], dtype=float).reshape(-1, 2)
    sig = noise_scale(train[:, 1]) if len(train) > 2 else 1.0
    out = []
    for arr, is_val, sigma in ((train, False, sig), (val, True, _val_sigma(run, sig))):
        keep = (arr[:, 0] >= max(1, start)) & (arr[:, 0] > after) & (arr[:, 0] <= len(lr)) & np.isfinite(arr[:, 1])
        if keep.any():
            out.append(CurveSegment(lr, arr[keep, 0].astype(int), arr[keep, 1], val=is_val, sigma=sigma,
                                    label=f"{label} {'val' if is_val else 'train'}".strip()))
    return out


def fit_start(runs: list[dict], start_frac: float = START_FRAC) -> int:
    """First update of the fit window (see the module docstring)."""
    shortest = min(int(r.get("steps") or 0) for r in runs)
    warm = max(int((r.get("config") or {}).get("warmup_steps") or 0) for r in runs)
    return max(warm + 1, int(math.ceil(start_frac * shortest)), 2)


def size_segments(runs: list[dict], start_frac: float = START_FRAC) -> list[CurveSegment]:
    """The segments of one size's runs, each point once (see the module docstring)."""
    start = fit_start(runs, start_frac)
    longest = max(runs, key=lambda r: int(r.get("steps") or 0))
    segs = []
    for r in runs:
        branch = r.get("branch") or {}
        after = 0 if (r is longest or not branch) else int(branch.get("stable_end_step", 0))
        segs += run_segments(r, start=start, after=after, label=str(r.get("run_id", "")))
    return segs


def fit_size(runs: list[dict], *, lam: float | None = None, start_frac: float = START_FRAC,
             val_only: bool = False) -> CurveLaw:
    """One curve law fitted on all ``runs`` of one model size (ok runs only); ``val_only``: the
    validation points alone (no train losses, no offset)."""
    ok = [r for r in runs if r.get("status") == "ok" and (r.get("curve") or {}).get("train")]
    if not ok:
        raise UserError("no finished run with a loss curve to fit the curve law on")
    segs = [s for s in size_segments(ok, start_frac) if s.val or not val_only]
    law = fit_curve_law(segs, lam=lam)
    law.fit["runs"] = [r.get("run_id") for r in ok]
    law.fit["fit_start_step"] = fit_start(ok, start_frac)
    return law


@dataclass
class PointSchedule:
    """How a predicted point would be trained: ``steps`` updates of ``schedule`` with ``warmup_steps``."""
    steps: int
    schedule: str
    warmup_steps: int
    cooldown_frac: float = 0.2

    def factors(self) -> np.ndarray:
        return lr_factors(self.steps, schedule=self.schedule, warmup_steps=self.warmup_steps,
                          cooldown_frac=self.cooldown_frac)


def predict_final(law: CurveLaw, point: PointSchedule) -> float:
    """Predicted final validation loss (nats) of ``point`` under ``law``."""
    return law.final(point.factors(), val=True)


# ------------------------------------------------------------------------------------------ studies
def study_runs(study: str | Path) -> dict[str, list[dict]]:
    """run.json records of a ladder study's runs table, grouped by size (ladder rows only)."""
    import pandas as pd

    study = Path(study)
    table = study / "runs.csv"
    if not table.is_file():
        raise UserError(f"{table} not found; point --study at a ladder study folder (made by `scaleplan ladder`)")
    df = pd.read_csv(table)
    need = {"run_dir", "size", "status"}
    if not need <= set(df.columns):
        raise UserError(f"{table} lacks column(s) {sorted(need - set(df.columns))}; is it a ladder runs table?")
    if "role" in df.columns:
        df = df[df["role"].fillna("ladder") == "ladder"]
    out: dict[str, list[dict]] = {}
    for _, row in df.iterrows():
        path = study / str(row["run_dir"]) / "run.json"
        if not path.is_file():
            continue
        run = read_json(path)
        run.setdefault("run_id", str(row.get("run_id", path.parent.name)))
        out.setdefault(str(row["size"]), []).append(run)
    if not out:
        raise UserError(f"{table}: no run.json found under its run_dir entries; was the ladder trained here?")
    return out


# ------------------------------------------------------------------------------------------ predictions
def point_schedules(run: dict, tokens_per_param: list[float], schedule: str) -> list[PointSchedule]:
    """The ladder's schedule of each budget for the size of ``run`` (proxy_train.ladder_plan conventions:
    budgets m x N_non-embedding rounded to whole steps; cosine warmup = warmup_frac x its own steps;
    WSD warmup = warmup_frac x the smallest budget's steps, cooldown_frac of each budget)."""
    cfg = run.get("config") or {}
    tps = int(cfg["batch"]) * int(cfg["seq_len"])
    wf = float(cfg.get("warmup_frac", 0.0))
    steps = [max(1, int(round(m * int(run["non_embedding_params"]) / tps))) for m in tokens_per_param]
    out = []
    for st in steps:
        warm = int(round(wf * (st if schedule == "cosine" else min(steps))))
        out.append(PointSchedule(st, schedule, warm, float(cfg.get("cooldown_frac", 0.2))))
    return out


def predicted_rows(law: CurveLaw, run: dict, size: str, tokens_per_param: list[float], schedule: str) -> list[dict]:
    """Rows of a predicted runs table (the runs-table columns ``scaleplan fit`` reads, docs/CONTRACTS.md,
    plus ``predicted_by``) for each budget of ``size``; ``run`` is any run of that size (for N and batch)."""
    cfg = run.get("config") or {}
    tps = int(cfg["batch"]) * int(cfg["seq_len"])
    rows = []
    for m, p in zip(tokens_per_param, point_schedules(run, tokens_per_param, schedule)):
        tokens = p.steps * tps
        rows.append({
            "run_id": f"predicted-{size}-t{tokens}-{schedule}", "total_params": run["total_params"],
            "non_embedding_params": run["non_embedding_params"], "tokens": tokens,
            "flops": 6.0 * run["total_params"] * tokens, "final_val_loss": predict_final(law, p),
            "final_train_loss": None, "schedule": schedule, "status": "ok", "d_model": run.get("d_model"),
            "n_layers": run.get("n_layers"), "size": size, "tokens_per_param": tokens / run["non_embedding_params"],
            "steps": p.steps, "warmup_steps": p.warmup_steps, "compute_used": 0.0,
            "predicted_by": f"curve law (Tissue et al. 2024) fitted on {', '.join(map(str, law.fit.get('runs', [])))}",
        })
    return rows


def _rolling(y: np.ndarray, k: int) -> np.ndarray:
    if len(y) < k:
        return y
    return np.convolve(y, np.ones(k) / k, mode="valid")


def plot_curves(law: CurveLaw, runs: list[dict], window: int = 25) -> list[dict]:
    """Per run, the curves :func:`planner.curve_law_plot.fig_curves` draws from the fit window's
    start on (train: rolling mean of ``window`` steps, for display only; the fit uses the raw losses)."""
    start = int(law.fit.get("fit_start_step", 1))
    out = []
    for r in sorted(runs, key=lambda r: int(r.get("steps") or 0)):
        curve = r.get("curve") or {}
        tr = np.array([[p[0] - 1, p[2]] for p in curve.get("train", []) if p[2] is not None], dtype=float).reshape(-1, 2)
        va = [p for p in curve.get("val", []) if p[2] is not None and p[0] >= 1]
        lr = run_lr_factors(r)
        s = np.unique(np.geomspace(min(start, len(lr)), len(lr), 200).astype(int))
        ts = tr[window - 1:, 0] if len(tr) >= window else tr[:, 0]
        sm = _rolling(tr[:, 1], window)
        keep = ts >= start
        out.append({"label": f"{int(r['steps'])} steps", "train_s": ts[keep].tolist(), "train_loss": sm[keep].tolist(),
                    "val_s": [p[0] for p in va if p[0] >= start], "val_loss": [p[2] for p in va if p[0] >= start],
                    "law_s": s.tolist(), "law_loss": law.predict(lr, s, val=True).tolist()})
    return out


def fit_study(study: str | Path, tokens_per_param: list[float], schedule: str, *,
              lam: float | None = None, progress: bool = True) -> dict:
    """Fit a curve law per size of a ladder study and predict each (size, budget) under ``schedule``.

    Returns {"laws": {size: CurveLaw}, "rows": predicted runs-table rows, "plot": per-size plot data}."""
    from tqdm import tqdm

    by_size = study_runs(study)
    laws, rows, plot = {}, [], {}
    for size, runs in tqdm(sorted(by_size.items(), key=lambda kv: kv[1][0]["non_embedding_params"]),
                           desc="curve law fits", unit="size", disable=not progress):
        law = fit_size(runs, lam=lam)
        laws[size] = law
        pred = predicted_rows(law, runs[0], size, tokens_per_param, schedule)
        rows += pred
        plot[size] = {"curves": plot_curves(law, [r for r in runs if r.get("status") == "ok"]),
                      "predicted": [{"s": p["steps"], "loss": p["final_val_loss"],
                                     "label": f"{schedule} {p['tokens_per_param']:.3g} tokens/param"} for p in pred],
                      "train_note": "faint lines: train loss, rolling mean of 25 steps (display only); "
                                    "dashed: the law's validation-loss prediction; x: predicted final losses"}
    return {"laws": laws, "rows": rows, "plot": plot}
