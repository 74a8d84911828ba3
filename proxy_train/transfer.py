"""μTransfer verification: does the optimal learning rate stay put across widths?

The experiment of Tensor Programs V (Yang et al. 2022, arXiv:2203.03466, Fig. 1): for μP and SP,
train proxies at several widths on a log2-LR grid with everything else fixed, find each width's
optimal log2 LR, and measure the *drift* = max − min of the optimum over widths, in octaves.
Published: under SP the optimum moves by several octaves over a 64× width range (≈ 1/width); under
μP it stays within about one grid step. On 2 CPU cores, widths 64–512 at 150 steps showed SP ≈ 2.0
octaves and μP ≈ 0.2 (/work/shared/notes/mup-and-sweeps.md §4.5). Goals here: μP drift ≤ 0.5
octave, SP drift ≥ 1.5.

Conventions: μP runs use ``base_width = min(widths)`` (so m_d = width / min width varies, which is
the point); SP ignores the base width. The grid runs as one Optuna study (``GridSampler`` over
``width × param × log2_lr``, journal file in the out folder, or any Optuna RDB storage shared by
workers on many machines: :mod:`proxy_train.transfer_queue`), so it is resumable and can use
several workers; a diverged run counts as visited with loss ``None`` (treated as +inf).

Recording (``--record-into``): :mod:`proxy_train.transfer_record`.

Optimum of one curve: the grid argmin refined by the vertex of the parabola through the minimum
and its two neighbours (equal spacing h: x* = x1 + h/2 · (y0 − y2) / (y0 − 2 y1 + y2)); at a grid
edge, or when a neighbour diverged, the argmin itself with ``edge: true``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planner import __version__
from planner.errors import UserError
from planner.io import atomic_write, write_json
from proxy_train.transfer_record import (read_target_hparams, refuse_mismatch, hparams_path, record_into_hparams,  # noqa: F401
                                         record_problems)

MUP_GOAL = 0.5   # octaves: μP optimum drift must stay below this
SP_GOAL = 1.5    # octaves: SP optimum drift expected above this
WIDER_TOL = 0.02  # nats: "wider is better" tolerates this much noise


def parse_lr_grid(text: str) -> list[float]:
    """``-12:-5:1`` (inclusive, log2) or ``-10,-9.5,-9`` -> sorted list of log2 LRs."""
    try:
        if ":" in text:
            parts = [float(x) for x in text.split(":")]
            if len(parts) == 2:
                parts.append(1.0)
            start, stop, step = parts
            if step <= 0 or stop < start:
                raise ValueError
            n = int(math.floor((stop - start) / step + 1e-9)) + 1
            vals = [round(start + i * step, 6) for i in range(n)]
        else:
            vals = sorted(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise UserError(f"--lrs {text!r} is not a log2 LR grid; use START:STOP:STEP like -12:-5:1 "
                        "or a list like -10,-9,-8") from None
    if len(vals) < 3:
        raise UserError(f"--lrs {text!r} gives {len(vals)} points; use at least 3 to locate an optimum")
    if any(v > 0 or v < -30 for v in vals):
        raise UserError(f"--lrs values must be log2 learning rates between -30 and 0, got {vals}")
    return vals


def parse_params(text: str) -> list[str]:
    vals = [p.strip().lower() for p in text.split(",") if p.strip()]
    if not vals or any(p not in ("mup", "sp") for p in vals) or len(set(vals)) != len(vals):
        raise UserError(f"--param {text!r}: use mup, sp or mup,sp")
    return vals


# ----------------------------------------------------------------------------------------------
# analysis (pure math)
# ----------------------------------------------------------------------------------------------

def curve_optimum(log2_lrs: list[float], losses: list[float | None]) -> dict:
    """Optimal log2 LR of one loss-vs-LR curve (see the module docstring)."""
    pts = sorted(zip(log2_lrs, losses))
    xs = [p[0] for p in pts]
    ys = [float(p[1]) if (p[1] is not None and math.isfinite(float(p[1]))) else math.inf for p in pts]
    if all(math.isinf(y) for y in ys):
        return {"log2_lr": None, "loss": None, "edge": True, "method": "all runs diverged"}
    i = min(range(len(ys)), key=lambda k: ys[k])
    if i == 0 or i == len(ys) - 1 or math.isinf(ys[i - 1]) or math.isinf(ys[i + 1]):
        return {"log2_lr": xs[i], "loss": ys[i], "edge": True, "method": "argmin at grid edge"}
    x0, x1, x2 = xs[i - 1], xs[i], xs[i + 1]
    y0, y1, y2 = ys[i - 1], ys[i], ys[i + 1]
    # General three-point parabola vertex (works for unequal spacing too).
    den = (x1 - x0) * (y1 - y2) - (x1 - x2) * (y1 - y0)
    if den == 0:
        return {"log2_lr": x1, "loss": y1, "edge": False, "method": "flat: argmin"}
    x = x1 - 0.5 * ((x1 - x0) ** 2 * (y1 - y2) - (x1 - x2) ** 2 * (y1 - y0)) / den
    x = min(max(x, x0), x2)
    return {"log2_lr": x, "loss": y1, "edge": False, "method": "parabola"}


def analyze(rows: list[dict]) -> dict:
    """Per-parameterization optima, drift and the "wider is better" check.

    ``rows``: dicts with ``param``, ``width``, ``log2_lr``, ``loss`` (None when diverged).
    """
    out: dict[str, Any] = {"params": {}}
    for param in sorted({r["param"] for r in rows}):
        widths = sorted({int(r["width"]) for r in rows if r["param"] == param})
        per_width = {}
        for w in widths:
            rs = [r for r in rows if r["param"] == param and int(r["width"]) == w]
            opt = curve_optimum([r["log2_lr"] for r in rs], [r["loss"] for r in rs])
            opt["curve"] = {str(r["log2_lr"]): r["loss"] for r in sorted(rs, key=lambda r: r["log2_lr"])}
            per_width[str(w)] = opt
        opts = [v["log2_lr"] for v in per_width.values() if v["log2_lr"] is not None]
        drift = (max(opts) - min(opts)) if len(opts) >= 2 else None
        best = [(w, per_width[str(w)]["loss"]) for w in widths if per_width[str(w)]["loss"] is not None]
        worse = [{"narrow": a[0], "wide": b[0], "increase": b[1] - a[1]}
                 for a, b in zip(best, best[1:]) if b[1] - a[1] > WIDER_TOL]
        slope = None
        if len(opts) >= 2:  # least-squares slope of optimal log2 LR vs log2 width (SP ≈ −1 in TP V)
            import numpy as np

            ws = [math.log2(w) for w in widths if per_width[str(w)]["log2_lr"] is not None]
            slope = float(np.polyfit(ws, opts, 1)[0])
        out["params"][param] = {
            "widths": widths, "optima": per_width, "drift_octaves": drift,
            "any_edge": any(v["edge"] for v in per_width.values()),
            "slope_vs_log2_width": slope,
            "wider_is_better": not worse, "wider_violations": worse,
        }
    mup = out["params"].get("mup", {}).get("drift_octaves")
    sp = out["params"].get("sp", {}).get("drift_octaves")
    out["goals"] = {"mup_drift_max": MUP_GOAL, "sp_drift_min": SP_GOAL,
                    "mup_ok": None if mup is None else mup <= MUP_GOAL,
                    "sp_ok": None if sp is None else sp >= SP_GOAL}
    return out


# ----------------------------------------------------------------------------------------------
# reading a stored result
# ----------------------------------------------------------------------------------------------

@dataclass
class _Optimum:
    """One width's entry of ``params.<param>.optima`` (:func:`curve_optimum` plus its ``curve``)."""
    log2_lr: float | None
    loss: float | None
    edge: bool
    method: str
    curve: dict[str, float | None]  # str(log2 LR) -> final loss (None: diverged)


@dataclass
class _Violation:
    narrow: int
    wide: int
    increase: float


@dataclass
class _Param:
    """``params.<param>`` of transfer.json (:func:`analyze`)."""
    widths: list[int]
    optima: dict[str, object]  # str(width) -> _Optimum
    drift_octaves: float | None
    any_edge: bool
    slope_vs_log2_width: float | None = None
    wider_is_better: bool = True
    wider_violations: list[object] = field(default_factory=list)  # _Violation


@dataclass
class _Goals:
    mup_drift_max: float
    sp_drift_min: float
    mup_ok: bool | None = None
    sp_ok: bool | None = None


@dataclass
class _Meta:
    """``meta`` of transfer.json (:func:`finish`)."""
    scaleplan_version: str | None = None
    code_version: str | None = None
    command: str | None = None
    corpus_sha256: str | None = None
    setting: dict[str, Any] = field(default_factory=dict)  # n_layers, head_dim, ... (scalars)
    transfer_hp: dict[str, float] | None = None
    reference: str | None = None


@dataclass
class _Result:
    """transfer.json as :func:`finish` writes it (``meta``, ``n_runs``, ``wall_s`` absent in an
    :func:`analyze` result)."""
    params: dict[str, object]  # mup | sp -> _Param
    goals: object  # _Goals
    meta: object = None  # _Meta
    n_runs: int | None = None
    wall_s: float | None = None


#: Grid cells accepted per parameterization (widths x LRs of a real check are tens to hundreds).
MAX_CELLS = 100_000


def read_result(path: str | Path) -> dict:
    """A stored transfer.json, every field checked (planner/schema.py: types, finiteness, known keys;
    planner.io.read_json's size and nesting limits; widths positive, parameterizations mup/sp, LR grid
    keys numbers); UserError naming the file and the field otherwise. The one reader for the CLI and
    the dashboard."""
    from planner.io import read_json
    from planner.schema import check_record

    where, fix = f"{path}", "regenerate it with `scaleplan transfer-check --out DIR`"
    d = read_json(path, "transfer.json")
    check_record(_Result, d, where, fix=fix, rules={"n_runs": "nonneg", "wall_s": "nonneg"})
    check_record(_Goals, d["goals"], f"{where} goals", fix=fix)
    if d.get("meta") is not None:
        check_record(_Meta, d["meta"], f"{where} meta", fix=fix)
    for param, res in d["params"].items():
        at = f"{where} params.{param}"
        if param not in ("mup", "sp"):
            raise UserError(f"{where} params has {param!r}; only mup and sp are parameterizations; {fix}")
        check_record(_Param, res, at, fix=fix, rules={"widths": "positive", "drift_octaves": "nonneg"})
        if sum(len(o.get("curve") or {}) if isinstance(o, dict) else 0 for o in res["optima"].values()) > MAX_CELLS:
            raise UserError(f"{at} has more than {MAX_CELLS:,} grid cells; {fix}")
        for w, opt in res["optima"].items():
            if not w.isdigit() or int(w) <= 0:
                raise UserError(f"{at}.optima has the key {w[:40]!r}, not a width; {fix}")
            check_record(_Optimum, opt, f"{at}.optima.{w}", fix=fix)
            for x in opt["curve"]:
                try:
                    ok = math.isfinite(float(x))
                except ValueError:
                    ok = False
                if not ok:
                    raise UserError(f"{at}.optima.{w}.curve has the key {x[:40]!r}, not a log2 LR; {fix}")
        for i, v in enumerate(res.get("wider_violations") or []):
            check_record(_Violation, v, f"{at}.wider_violations[{i}]", fix=fix)
    return d


# ----------------------------------------------------------------------------------------------
# figure
# ----------------------------------------------------------------------------------------------

def transfer_figure(result: dict):
    """Loss vs log2 LR, one line per width, μP and SP side by side (the TP V Fig. 1 layout)."""
    import plotly.graph_objects as go
    from plotly.colors import sample_colorscale
    from plotly.subplots import make_subplots

    params = [p for p in ("mup", "sp") if p in result["params"]]
    titles = []
    for p in params:
        d = result["params"][p]["drift_octaves"]
        titles.append(f"{'μP' if p == 'mup' else 'SP'}: optimum drift {d:.2f} octaves" if d is not None else p)
    fig = make_subplots(rows=1, cols=len(params), subplot_titles=titles, shared_yaxes=True)
    all_w = sorted({w for p in params for w in result["params"][p]["widths"]})
    colors = sample_colorscale("Viridis", [i / max(1, len(all_w) - 1) * 0.9 for i in range(len(all_w))])
    for col, p in enumerate(params, start=1):
        for w in result["params"][p]["widths"]:
            opt = result["params"][p]["optima"][str(w)]
            xs = [float(x) for x in opt["curve"]]
            ys = [v for v in opt["curve"].values()]
            c = colors[all_w.index(w)]
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=f"width {w}", line={"color": c},
                                     legendgroup=str(w), showlegend=col == 1), row=1, col=col)
            if opt["log2_lr"] is not None:
                fig.add_trace(go.Scatter(x=[opt["log2_lr"]], y=[opt["loss"]], mode="markers",
                                         marker={"symbol": "star", "size": 12, "color": c},
                                         name=f"optimum {w}", legendgroup=str(w), showlegend=False),
                              row=1, col=col)
        fig.update_xaxes(title_text="log2 learning rate", row=1, col=col)
    fig.update_yaxes(title_text="final validation loss (nats/token)", row=1, col=1)
    fig.update_layout(title="μTransfer check: the optimal LR across widths (μP stays, SP drifts)")
    return fig


# ----------------------------------------------------------------------------------------------
# the experiment
# ----------------------------------------------------------------------------------------------

def run_transfer_check(*, data, out, widths, lrs, params, steps=150, tokens=None, n_layers=2, head_dim=16,
                       batch=16, seq_len=64, seed=0, workers=1, init_std=0.02, schedule="constant",
                       objective="proxy", command="", progress=True, record_into=None, storage=None,
                       enqueue_only=False, heartbeat_interval=60, grace_period=None) -> dict:
    """Run (or resume) the grid and write transfer.json, transfer.html and runs.csv into ``out``;
    with ``record_into`` (an hparams.yaml or its study folder) also its ``transfer`` record, checked
    against that file before any run starts. ``storage``: the Optuna storage URL (default the
    journal file in ``out``); ``enqueue_only``: enqueue the cells for workers on other machines
    (:mod:`proxy_train.transfer_queue`) and train nothing (returns the sweep summary)."""
    from proxy_train.study import make_spec
    from proxy_train.sweep import run_sweep

    if len(widths) < 2:
        raise UserError("transfer-check needs at least two --widths to measure a drift")
    grid = {"width": sorted(int(w) for w in widths), "param": list(params), "log2_lr": list(lrs)}
    spec = make_spec(
        data=data, widths=grid["width"], param="both" if len(params) > 1 else params[0], steps=steps,
        tokens=tokens, sampler="grid", pruner="none", seed=seed, n_layers=n_layers, batch=batch,
        seq_len=seq_len, head_dim=head_dim, schedule=schedule, objective=objective, kind="transfer",
        grid=grid, count_failed=True, base_width=min(grid["width"]),
        transfer_hp={"init_std": float(init_std), "alpha_in": 1.0, "alpha_out": 1.0, "warmup_frac": 0.0})
    if record_into is not None:  # refuse a mismatch before hours of runs, not after
        target = hparams_path(record_into)
        refuse_mismatch(target, record_problems(read_target_hparams(target), grid["param"], grid["width"], spec.corpus_sha256))
    cells = [{"width": w, "param": p, "log2_lr": float(lr)}
             for w in grid["width"] for p in grid["param"] for lr in grid["log2_lr"]]
    from proxy_train.transfer_queue import queue_attrs

    summary = run_sweep(spec, out, trials=len(cells), workers=workers, command=command, progress=progress,
                        cells=cells, storage=storage, heartbeat_interval=heartbeat_interval,
                        grace_period=grace_period, mode="enqueue" if enqueue_only else "run",
                        study_attrs=queue_attrs(spec, cells))
    if enqueue_only:
        return summary
    result = finish(out, summary, storage=storage)
    if record_into is not None:
        result["recorded_into"] = str(record_into_hparams(record_into, result))
    return result


def grid_points(df) -> list[dict]:
    """One ``{param, width, log2_lr, loss}`` per visited grid cell of a trials table (loss None when
    the run diverged or failed); a retried cell keeps its finished run."""
    from proxy_train.trials import is_real_error

    cells: dict[tuple, dict] = {}
    for _, r in df.iterrows():
        if r["state"] not in ("COMPLETE", "PRUNED", "FAIL") or r.get("log2_lr") is None:
            continue
        if r["state"] == "FAIL" and not is_real_error(str(r["fail_reason"] or "")):
            continue
        loss = float(r["value"]) if r["state"] == "COMPLETE" and r["value"] is not None else None
        point = {"param": r["param"], "width": int(r["width"]), "log2_lr": float(r["log2_lr"]), "loss": loss}
        key = (point["param"], point["width"], point["log2_lr"])
        if key not in cells or (cells[key]["loss"] is None and loss is not None):
            cells[key] = point
    return list(cells.values())


def runs_table(df, n_layers: int):
    """The trials table in the runs-table vocabulary (run_id, d_model, final_val_loss, lr, status)."""
    table = df.rename(columns={"number": "run_id", "width": "d_model", "value": "final_val_loss"})
    table["n_layers"] = n_layers
    if "log2_lr" in table.columns:
        table["lr"] = [2.0 ** x if x == x else None for x in table["log2_lr"]]
    table["status"] = ["ok" if s == "COMPLETE" else ("diverged" if s == "PRUNED" else s.lower())
                       for s in table["state"]]
    return table


def finish(out: str | Path, summary: dict | None = None, storage: str | None = None) -> dict:
    """Analyse the study in ``out`` (its trials read from the storage, not from any one disk) and
    write the result files."""
    from proxy_train.sweep_export import trials_frame
    from proxy_train.sweep_storage import open_study

    out = Path(out)
    study, meta = open_study(out, storage)
    df = trials_frame(study)
    cells = grid_points(df)
    result = analyze(cells)
    spec = meta.spec
    result["meta"] = {"scaleplan_version": __version__, "code_version": meta.code_version,
                      "command": meta.command, "corpus_sha256": spec.corpus_sha256,
                      "setting": {k: getattr(spec, k) for k in ("n_layers", "head_dim", "batch", "seq_len", "steps",
                                                                "tokens", "schedule", "base_width", "seed")},
                      "transfer_hp": spec.transfer_hp,
                      "reference": "TP V Fig. 1 (arXiv:2203.03466); notes/mup-and-sweeps.md §4.5 "
                                   "(SP 2.0 vs muP 0.2 octaves, widths 64-512, 150 steps)"}
    result["n_runs"] = len(cells)
    if summary is not None:
        result["wall_s"] = summary.get("wall_s")
    write_json(out / "transfer.json", result)
    atomic_write(out / "transfer.html", transfer_figure(result).to_html(include_plotlyjs="cdn"))
    atomic_write(out / "runs.csv", runs_table(df, spec.n_layers).to_csv(index=False))
    result["files"] = [str(out / f) for f in ("transfer.json", "transfer.html", "runs.csv")]
    return result


def human_report(res: dict) -> str:
    lines = []
    for p, d in res["params"].items():
        opts = ", ".join(f"{w}: {v['log2_lr']:.2f}{'*' if v['edge'] else ''}" if v["log2_lr"] is not None
                         else f"{w}: -" for w, v in d["optima"].items())
        drift = "n/a" if d["drift_octaves"] is None else f"{d['drift_octaves']:.2f}"
        lines.append(f"{'muP' if p == 'mup' else 'SP '} optimal log2 LR by width ({opts}); drift {drift} octaves"
                     + ("" if p != "mup" else f"; wider is better: {'yes' if d['wider_is_better'] else 'no'}"))
    g = res["goals"]
    lines.append(f"goals: muP drift <= {g['mup_drift_max']}: {g['mup_ok']}; SP drift >= {g['sp_drift_min']}: "
                 f"{g['sp_ok']}   (* = optimum at a grid edge)")
    lines.append("wrote " + ", ".join(res.get("files", []) + ([f"{res['recorded_into']} (transfer record)"]
                                                             if res.get("recorded_into") else [])))
    return "\n".join(lines)
