"""Horizon check: how the optimal μP base LR moves with the training length at one width.

The experiment of Bjorck et al. 2024 ("Scaling Optimal LR Across Token Horizons",
arXiv:2409.19913, their Fig. 1/§3: at fixed model size the optimal LR falls with the number of
training tokens) on our own proxy: the same model (one width, μP with ``base_width = width``) is
trained over a log2-LR grid at several horizons (optimizer steps, 4× apart), with several seeds;
each (horizon, seed) curve gives an optimum by :func:`proxy_train.transfer.curve_optimum` (the
parabola through the grid minimum and its neighbours, in log2 LR), and
:func:`planner.horizon.fit_horizon_exponent` fits log2 lr* = a + b·log2 T over all per-seed optima.

Conventions:

* Each (horizon, seed) is one ``kind: transfer`` study (the sweep machinery of
  :mod:`proxy_train.sweep`: Optuna journal, resumable, one grid cell per trial) in
  ``OUT/runs/h{steps}_s{seed}/`` (local, like every study's per-run folders); the grid of the spec
  is the whole ``--lrs`` range, but only a window of it is run: 5 points around the previous
  horizon's optimum, widened one point at a time until the curve's minimum has
  :data:`MARGIN` points on each side (or a diverged run on the high side, or the end of the grid);
  then every seed of that horizon runs the union of the seeds' windows (same LRs in every curve).
  The procedure is a function of the finished trials, so rerunning the command resumes it.
* The other hyperparameters are the sweep defaults of :data:`proxy_train.study.DEFAULT_HPARAMS`
  (init std 0.02, multipliers 1, warmup 5%) with the sweep's default cosine schedule (to 10% of the
  peak), so the measured exponent applies to an LR tuned by ``scaleplan sweep``.
* T is counted in training tokens = steps × batch × seq_len; tokens per parameter use the run
  record's ``total_params``.
* Per horizon: the optimum of the seed-mean curve, and mean ± SE of the per-seed optima. The fit's
  CI is the regression one (Student t, n − 2 dof); a seed bootstrap (resampling seeds within each
  horizon) is reported beside it.
"""
from __future__ import annotations

import math
import random
import sys
from datetime import datetime, timezone
from pathlib import Path

from planner import __version__
from planner.errors import UserError
from planner.horizon import fit_horizon_exponent
from planner.io import atomic_write, write_json, write_yaml

MARGIN = 2        # grid points wanted on each side of a curve's minimum
START_POINTS = 5  # first window: this many grid points around the guess
BOOTSTRAP = 2000


def parse_horizons(text: str) -> list[int]:
    """``50,200,800`` -> sorted optimizer-step counts (at least 3, distinct, positive)."""
    try:
        vals = sorted({int(float(x)) for x in text.split(",") if x.strip()})
    except ValueError:
        raise UserError(f"--horizons {text!r} is not a list of step counts; use e.g. 50,200,800,3200") from None
    if len(vals) < 3 or vals[0] <= 0:
        raise UserError(f"--horizons {text!r}: give at least 3 distinct positive step counts, e.g. 50,200,800")
    return vals


def parse_seeds(text: str) -> list[int]:
    try:
        vals = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise UserError(f"--seeds {text!r} is not a list of integers; use e.g. 0,1") from None
    if not vals:
        raise UserError("--seeds is empty; use e.g. 0,1")
    return vals


# ----------------------------------------------------------------------------------------------
# the adaptive LR window (pure)
# ----------------------------------------------------------------------------------------------

def next_cells(grid: list[float], window: list[float], losses: dict[float, float | None]) -> list[float]:
    """Grid points to add to ``window`` so that the minimum of ``losses`` has :data:`MARGIN` points
    on each side; [] when it has (or the grid ends, or the high side diverged)."""
    done = sorted(x for x in window if x in losses)
    finite = [x for x in done if losses[x] is not None and math.isfinite(losses[x])]
    if len(done) < len(window) or not finite:
        return []
    best = min(finite, key=lambda x: losses[x])
    lo, hi = min(window), max(window)
    add = []
    below = [x for x in done if x < best]
    above = [x for x in done if x > best]
    if len(below) < MARGIN:
        add += [x for x in grid if x < lo][-1:]
    if len(above) < MARGIN and not any(losses[x] is None for x in above):
        add += [x for x in grid if x > hi][:1]
    return add


def start_window(grid: list[float], center: float) -> list[float]:
    """The :data:`START_POINTS` grid points nearest ``center``."""
    return sorted(sorted(grid, key=lambda x: (abs(x - center), x))[:START_POINTS])


# ----------------------------------------------------------------------------------------------
# running
# ----------------------------------------------------------------------------------------------

def sub_spec(opts: dict, steps: int, seed: int):
    from proxy_train.study import DEFAULT_HPARAMS, make_spec

    w = int(opts["width"])
    return make_spec(
        data=opts["data"], widths=[w], param="mup", steps=int(steps), sampler="grid", pruner="none",
        seed=int(seed), n_layers=opts["n_layers"], batch=opts["batch"], seq_len=opts["seq_len"],
        head_dim=opts["head_dim"], schedule=opts["schedule"], kind="transfer", count_failed=True,
        grid={"width": [w], "param": ["mup"], "log2_lr": list(opts["lrs"])}, base_width=w,
        transfer_hp={k: float(DEFAULT_HPARAMS[k]) for k in ("init_std", "alpha_in", "alpha_out", "warmup_frac")})


def study_points(study_dir: Path) -> dict[float, float | None]:
    """log2 LR -> final val loss (None: diverged) of a sub-study's finished cells."""
    from proxy_train.sweep_export import trials_frame
    from proxy_train.sweep_storage import open_study
    from proxy_train.transfer import grid_points

    if not (study_dir / "study.yaml").exists():
        return {}
    study, _ = open_study(study_dir)
    return {p["log2_lr"]: p["loss"] for p in grid_points(trials_frame(study))}


def run_window(opts: dict, steps: int, seed: int, window: list[float], command: str, progress: bool) -> list[float]:
    """Run one (horizon, seed) study, widening the window until the minimum is bracketed."""
    from proxy_train.sweep import run_sweep

    study_dir = Path(opts["out"]) / "runs" / f"h{steps:06d}_s{seed}"
    spec = sub_spec(opts, steps, seed)
    window = sorted(set(window) | set(study_points(study_dir)))
    while True:
        cells = [{"width": int(opts["width"]), "param": "mup", "log2_lr": float(x)} for x in window]
        print(f"horizon {steps} steps, seed {seed}: log2 LR {window[0]:g}..{window[-1]:g} ({len(window)} points)",
              file=sys.stderr, flush=True)
        run_sweep(spec, study_dir, trials=len(cells), workers=1, command=command, progress=progress, cells=cells)
        add = next_cells(opts["lrs"], window, study_points(study_dir))
        if not add:
            return window
        window = sorted(set(window) | set(add))


def run_horizon_check(*, data, out, width=64, horizons, seeds=(0, 1), lrs, n_layers=2, head_dim=16, batch=16,
                      seq_len=64, schedule="cosine", center=-7.0, command="", progress=True) -> dict:
    """Run (or resume) every (horizon, seed) study, shortest horizon first, then write the results."""
    from proxy_train.transfer import curve_optimum

    opts = {"data": str(data), "out": str(out), "width": int(width), "n_layers": int(n_layers),
            "head_dim": int(head_dim), "batch": int(batch), "seq_len": int(seq_len), "schedule": schedule,
            "lrs": sorted(float(x) for x in lrs), "horizons": sorted(horizons), "seeds": sorted(seeds)}
    for s in opts["horizons"]:
        sub_spec(opts, s, opts["seeds"][0])  # validate every option before anything runs
    guess = float(center)
    for steps in opts["horizons"]:
        window = start_window(opts["lrs"], guess)
        windows = {}
        while True:  # every seed runs the union of the windows: the same LRs in every curve
            for seed in opts["seeds"]:
                windows[seed] = run_window(opts, steps, seed, sorted(set(window) | set(windows.get(seed, []))),
                                           command, progress)
            union = sorted(set().union(*windows.values()))
            if all(windows[s] == union for s in opts["seeds"]):
                break
            window = union
        optima = []
        for seed in opts["seeds"]:
            pts = study_points(Path(out) / "runs" / f"h{steps:06d}_s{seed}")
            opt = curve_optimum(list(pts), list(pts.values()))["log2_lr"]
            if opt is not None:
                optima.append(opt)
        if optima:
            guess = sum(optima) / len(optima)
    return finish(opts, command)


# ----------------------------------------------------------------------------------------------
# analysis and files
# ----------------------------------------------------------------------------------------------

def collect(opts: dict) -> list[dict]:
    """One row per finished run: horizon, tokens, seed, log2_lr, lr, loss, status."""
    rows = []
    tok = opts["batch"] * opts["seq_len"]
    for steps in opts["horizons"]:
        for seed in opts["seeds"]:
            for x, loss in sorted(study_points(Path(opts["out"]) / "runs" / f"h{steps:06d}_s{seed}").items()):
                rows.append({"horizon_steps": steps, "tokens": steps * tok, "seed": seed, "width": opts["width"],
                             "log2_lr": x, "lr": 2.0 ** x, "final_val_loss": loss,
                             "status": "ok" if loss is not None else "diverged"})
    return rows


def analyze(rows: list[dict], n_params: int | None = None, seed: int = 0) -> dict:
    """Per-horizon optima (seed-mean curve; per-seed mean ± SE), the OLS fit over per-seed optima and
    a seed-bootstrap CI of the exponent."""
    from proxy_train.transfer import curve_optimum

    per_h, pts_x, pts_y, lsq_x, lsq_y = {}, [], [], [], []
    for steps in sorted({r["horizon_steps"] for r in rows}):
        rs = [r for r in rows if r["horizon_steps"] == steps]
        tokens = rs[0]["tokens"]
        seeds = sorted({r["seed"] for r in rs})
        seed_opt, seed_lsq = {}, {}
        for s in seeds:
            xs, ys = ([r["log2_lr"] for r in rs if r["seed"] == s], [r["final_val_loss"] for r in rs if r["seed"] == s])
            o = curve_optimum(xs, ys)
            seed_opt[str(s)] = o
            seed_lsq[str(s)] = lsq_optimum(xs, ys)
            if o["log2_lr"] is not None and not o["edge"]:
                pts_x.append(math.log2(tokens))
                pts_y.append(o["log2_lr"])
            if seed_lsq[str(s)] is not None:
                lsq_x.append(math.log2(tokens))
                lsq_y.append(seed_lsq[str(s)])
        curve = _mean_curve(rs, seeds)
        mean_opt = curve_optimum(list(curve), list(curve.values()))
        vals = [o["log2_lr"] for o in seed_opt.values() if o["log2_lr"] is not None and not o["edge"]]
        se = (_sd(vals) / math.sqrt(len(vals))) if len(vals) >= 2 else None
        per_h[str(steps)] = {"steps": steps, "tokens": tokens,
                             "tokens_per_param": tokens / n_params if n_params else None,
                             "optimum_log2_lr": mean_opt["log2_lr"], "optimum_lr": _exp2(mean_opt["log2_lr"]),
                             "optimum_edge": mean_opt["edge"], "optimum_loss": mean_opt["loss"],
                             "seed_optima": {k: v["log2_lr"] for k, v in seed_opt.items()},
                             "seed_edge": {k: v["edge"] for k, v in seed_opt.items()},
                             "seed_optima_lsq5": seed_lsq,
                             "seed_mean_log2_lr": sum(vals) / len(vals) if vals else None, "seed_se": se,
                             "curve": {str(k): v for k, v in curve.items()}}
    fit = fit_horizon_exponent(pts_x, pts_y)
    fit["bootstrap"] = _bootstrap(per_h, seed)
    fit["points"] = [{"log2_tokens": x, "log2_lr": y} for x, y in zip(pts_x, pts_y)]
    fit["method"] = "per-seed optima by proxy_train.transfer.curve_optimum (3-point parabola), OLS over them"
    check = None
    if len(lsq_x) >= 3 and len(set(lsq_x)) >= 2:
        check = fit_horizon_exponent(lsq_x, lsq_y)
        check["method"] = "per-seed optima by a least-squares parabola over the minimum +- 2 grid points"
    return {"horizons": per_h, "fit": fit, "fit_lsq5": check, "n_params": n_params}


def lsq_optimum(log2_lrs: list[float], losses: list[float | None], half: int = MARGIN) -> float | None:
    """Robustness check of :func:`proxy_train.transfer.curve_optimum`: the vertex of the least-squares
    parabola through the grid minimum and up to ``half`` finite points on each side (None when the
    minimum is at an edge or the parabola opens downward)."""
    import numpy as np

    pts = sorted((x, y) for x, y in zip(log2_lrs, losses) if y is not None and math.isfinite(y))
    if len(pts) < 4:
        return None
    i = min(range(len(pts)), key=lambda k: pts[k][1])
    if i == 0 or i == len(pts) - 1:
        return None
    use = pts[max(0, i - half): i + half + 1]
    c2, c1, _ = np.polyfit([x for x, _ in use], [y for _, y in use], 2)
    if c2 <= 0:
        return None
    return float(min(max(-c1 / (2 * c2), use[0][0]), use[-1][0]))


def _mean_curve(rs: list[dict], seeds: list[int]) -> dict[float, float | None]:
    """log2 LR -> mean loss over the seeds that ran it (None when any of them diverged)."""
    out = {}
    for x in sorted({r["log2_lr"] for r in rs}):
        ls = [r["final_val_loss"] for r in rs if r["log2_lr"] == x]
        out[x] = None if any(v is None for v in ls) else sum(ls) / len(ls)
    return out


def _bootstrap(per_h: dict, seed: int) -> dict:
    """Percentile 95% CI of the exponent, resampling the per-seed optima within each horizon."""
    groups = [(math.log2(h["tokens"]), [v for k, v in h["seed_optima"].items()
                                        if v is not None and not h["seed_edge"][k]]) for h in per_h.values()]
    groups = [(x, ys) for x, ys in groups if ys]
    if len(groups) < 2:
        return {"ci_low": None, "ci_high": None, "n": 0}
    rng = random.Random(seed)
    bs = []
    for _ in range(BOOTSTRAP):
        xs, ys = [], []
        for x, vals in groups:
            for _ in vals:
                xs.append(x)
                ys.append(rng.choice(vals))
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        bs.append(sum((a - mx) * (b - my) for a, b in zip(xs, ys)) / sum((a - mx) ** 2 for a in xs))
    bs.sort()
    return {"ci_low": bs[int(0.025 * BOOTSTRAP)], "ci_high": bs[int(0.975 * BOOTSTRAP) - 1], "n": BOOTSTRAP}


def _sd(v: list[float]) -> float:
    m = sum(v) / len(v)
    return math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1))


def _exp2(x):
    return None if x is None else 2.0 ** x


def _n_params(opts: dict) -> int | None:
    import json

    for p in sorted((Path(opts["out"]) / "runs").glob("h*_s*/runs/trial_*/run.json")):
        try:
            return int(json.loads(p.read_text())["total_params"])
        except (OSError, ValueError, KeyError):
            continue
    return None


def horizon_figure(result: dict):
    """Left: val loss vs log2 LR per horizon (seed mean); right: optimum vs log2 tokens and the fit."""
    import plotly.graph_objects as go
    from plotly.colors import sample_colorscale
    from plotly.subplots import make_subplots

    fit = result["fit"]
    hs = list(result["horizons"].values())
    fig = make_subplots(rows=1, cols=2, subplot_titles=(
        "validation loss vs LR, one line per horizon (mean of seeds)",
        f"optimal log2 LR vs log2 tokens: slope b = {fit['exponent']:.3f} "
        f"[{fit['ci_low']:.3f}, {fit['ci_high']:.3f}]"))
    colors = sample_colorscale("Viridis", [i / max(1, len(hs) - 1) * 0.9 for i in range(len(hs))])
    for h, c in zip(hs, colors):
        xs = [float(x) for x, v in h["curve"].items() if v is not None]
        ys = [v for v in h["curve"].values() if v is not None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", line={"color": c},
                                 name=f"{h['steps']} steps ({h['tokens']:,} tokens)"), row=1, col=1)
        if h["optimum_log2_lr"] is not None:
            fig.add_trace(go.Scatter(x=[h["optimum_log2_lr"]], y=[h["optimum_loss"]], mode="markers",
                                     marker={"symbol": "star", "size": 12, "color": c}, showlegend=False), row=1, col=1)
    px = [p["log2_tokens"] for p in fit["points"]]
    fig.add_trace(go.Scatter(x=px, y=[p["log2_lr"] for p in fit["points"]], mode="markers", name="per-seed optimum",
                             marker={"color": "black"}), row=1, col=2)
    line_x = [min(px), max(px)]
    fig.add_trace(go.Scatter(x=line_x, y=[fit["intercept"] + fit["exponent"] * x for x in line_x], mode="lines",
                             name="fit log2 lr* = a + b log2 T", line={"color": "firebrick"}), row=1, col=2)
    fig.update_xaxes(title_text="log2 peak learning rate", row=1, col=1)
    fig.update_xaxes(title_text="log2 training tokens", row=1, col=2)
    fig.update_yaxes(title_text="final validation loss (nats/token)", row=1, col=1)
    fig.update_yaxes(title_text="optimal log2 LR", row=1, col=2)
    fig.update_layout(title="Horizon check: the optimal μP LR vs training length at one width")
    return fig


def finish(opts: dict, command: str = "") -> dict:
    """Analyse the finished studies and write horizon.json, horizon.html, runs.csv and study.yaml."""
    import pandas as pd

    from proxy_train.study import code_version, read_study_meta

    out = Path(opts["out"])
    rows = collect(opts)
    result = analyze(rows, _n_params(opts))
    first = read_study_meta(out / "runs" / f"h{opts['horizons'][0]:06d}_s{opts['seeds'][0]}")
    setting = {k: opts[k] for k in ("width", "n_layers", "head_dim", "batch", "seq_len", "schedule",
                                    "horizons", "seeds", "lrs")}
    setting["transfer_hp"] = first.spec.transfer_hp
    result["meta"] = {"scaleplan_version": __version__, "code_version": code_version(), "command": command,
                      "corpus_sha256": first.spec.corpus_sha256, "setting": setting, "n_runs": len(rows),
                      "reference": "Bjorck et al. 2024, arXiv:2409.19913 (optimal LR falls with token horizon)"}
    write_json(out / "horizon.json", result)
    atomic_write(out / "horizon.html", horizon_figure(result).to_html(include_plotlyjs="cdn"))
    atomic_write(out / "runs.csv", pd.DataFrame(rows).to_csv(index=False))
    write_yaml(out / "study.yaml", {"kind": "horizon", "scaleplan_version": __version__,
                                    "code_version": code_version(), "command": command,
                                    "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                    "corpus_sha256": first.spec.corpus_sha256, "data": opts["data"],
                                    "setting": setting, "studies": "runs/h{steps}_s{seed} (local)"})
    result["files"] = [str(out / f) for f in ("horizon.json", "horizon.html", "runs.csv", "study.yaml")]
    return result


def human_report(res: dict) -> str:
    lines = ["horizon (steps / tokens): optimal log2 LR (seed-mean curve; per-seed mean ± SE)"]
    for h in res["horizons"].values():
        se = f" ± {h['seed_se']:.2f}" if h["seed_se"] is not None else ""
        opt = "-" if h["optimum_log2_lr"] is None else f"{h['optimum_log2_lr']:.2f}{'*' if h['optimum_edge'] else ''}"
        sm = "-" if h["seed_mean_log2_lr"] is None else f"{h['seed_mean_log2_lr']:.2f}"
        lines.append(f"  {h['steps']:>6} / {h['tokens']:>10,}: {opt}  ({sm}{se})")
    f = res["fit"]
    b = f["bootstrap"]
    lines.append(f"fit log2 lr* = {f['intercept']:.3f} + b log2 T: b = {f['exponent']:.4f}, 95% CI "
                 f"[{f['ci_low']:.4f}, {f['ci_high']:.4f}] (n={f['n']}); seed bootstrap CI "
                 + (f"[{b['ci_low']:.4f}, {b['ci_high']:.4f}]" if b["ci_low"] is not None else "n/a"))
    c = res.get("fit_lsq5")
    if c:
        lines.append(f"check (5-point least-squares parabolas): b = {c['exponent']:.4f}, 95% CI "
                     f"[{c['ci_low']:.4f}, {c['ci_high']:.4f}] (n={c['n']})")
    lines.append("wrote " + ", ".join(res.get("files", [])))
    return "\n".join(lines)
