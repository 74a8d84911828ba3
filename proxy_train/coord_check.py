"""Coordinate check (Tensor Programs V §7 / the mup README): is every activation's size width-free?

Method: ``mup.coord_check.get_coord_data`` trains one model per width for ``steps`` AdamW steps on
one fixed batch (t = 1 is the forward pass before the first update) and records l1 = mean|x| of
every module's output. For each module and step we fit the slope of log2(l1) against log2(width)
by least squares over the widths (the mean over seeds first).

Pass criterion (stated once, used by the CLI, the dashboard and the tests): |slope| <
``SLOPE_TOL`` = 0.15 for every module at every step t >= 2 (a 0.15 slope is a 1.11x change per
width doubling; SP grows like width^~1 in the hidden layers). t = 1 is reported but not judged: the mup README allows
the logits and attention logits to shrink with width before the first update (here the zero-init
readout and query already make them exactly 0 at t = 1 under μP).
The fixed batch is small on purpose (default 1 x 8 tokens): μP's statements are about width -> inf
at a fixed amount of data, and with n tokens an update's aligned part grows like width while its
random part grows like sqrt(width * n), so the check is only in its regime once width >> n.
Measured here with widths 32-256 (2 layers, AdamW lr 1e-2): 8 tokens -> worst |slope| 0.05;
32 tokens -> 0.26; 256 tokens -> 0.44 (not yet in the large-width regime), while SP stays at 2-3.
Statistics are taken in fp32 (mup 1.0.0 records them in the activation dtype).
Figures (plotly, torch-free, drawn from a stored result too): :func:`figure` (l1 vs width per step)
and :func:`slopes_figure` (the fitted slopes against the tolerance).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from planner import __version__
from planner.errors import UserError
from planner.io import atomic_write, write_json
from proxy_train.limits import MAX_COORD_WIDTH

SLOPE_TOL = 0.15


def _slope(widths: np.ndarray, l1: np.ndarray) -> float:
    if np.all(l1 == 0):
        return 0.0  # exactly zero at every width (zero-init output): width-independent
    y = np.log2(np.maximum(l1, 1e-30))
    x = np.log2(widths)
    return float(np.polyfit(x, y, 1)[0])


def _check_memory(width: int, n_layers: int, head_dim: int, vocab: int, batch: int, seq_len: int) -> None:
    """UserError, before any model is built, when the widest model cannot be trained in this machine's memory."""
    from proxy_train.config import proxy_shape
    from proxy_train.limits import check_fits_memory, training_bytes

    n = proxy_shape(vocab, width, n_layers, head_dim=head_dim, seq_len=seq_len).counts()["total_params"]
    need = training_bytes(n, batch=batch, seq_len=seq_len, d_model=width, n_layers=n_layers, vocab=vocab)
    check_fits_memory(f"the coordinate check at width {width} x {n_layers} layers", need,
                      "use smaller --widths or fewer --n-layers")


def coord_check(param: str = "mup", widths=(32, 64, 128, 256), steps: int = 4, lr: float = 1e-2, *,
                n_layers: int = 2, head_dim: int = 16, seeds: int = 3, batch: int = 1, seq_len: int = 8,
                vocab: int = 512, data: str | None = None, out: str | Path | None = None,
                progress: bool = False) -> dict:
    """Run the check; returns {passed, slopes: {module: {t: slope}}, worst, ...}; writes
    ``coord_check.json`` and ``coord_check.html`` into ``out`` when given."""
    import torch
    from mup.coord_check import get_coord_data

    from proxy_train.model import build_model, model_config

    widths = sorted(int(w) for w in widths)
    if param not in ("mup", "sp"):
        raise UserError(f"param must be mup or sp, got {param!r}")
    if len(widths) < 2 or len(set(widths)) != len(widths):
        raise UserError(f"need at least two different widths, got {widths}")
    if head_dim < 2 or head_dim % 2:
        raise UserError(f"head_dim {head_dim} is odd; RoPE needs an even head size (e.g. 16)")
    if widths[-1] > MAX_COORD_WIDTH:
        raise UserError(f"width {widths[-1]} is beyond the coordinate check's limit {MAX_COORD_WIDTH} "
                        "(proxy_train/limits.py); a width ratio of 8-16 is enough, e.g. 32,64,128,256")
    bad = [w for w in widths if w % head_dim or w < head_dim]
    if bad:
        raise UserError(f"widths {bad} are not multiples of the head size {head_dim}; use multiples like 32,64,128")
    if steps < 2:
        raise UserError(f"need at least 2 steps (t = 1 is before any update), got {steps}")
    if not (lr > 0 and math.isfinite(lr)):
        raise UserError(f"lr must be positive, got {lr}")

    g = torch.Generator().manual_seed(1234)
    if data:
        from proxy_train.data import TokenData
        td = TokenData(data)
        td.check_seq_len(seq_len)
        vocab = td.vocab_size
        hi = len(td.train) - seq_len - 1
        x, y = td.windows("train", torch.randint(0, hi + 1, (batch,), generator=g).tolist(), seq_len)
        x, y = torch.from_numpy(x), torch.from_numpy(y)
    else:
        tokens = torch.randint(0, vocab, (batch, seq_len + 1), generator=g)
        x, y = tokens[:, :-1], tokens[:, 1:]
    loader = [(x, y.reshape(-1))]
    _check_memory(widths[-1], n_layers, head_dim, vocab, batch, seq_len)

    def factory(w):
        def make():
            cfg = model_config(vocab, w, n_layers, head_dim=head_dim, parameterization=param, max_seq_len=seq_len)
            return build_model(cfg, base_width=widths[0]).float()
        return make

    df = get_coord_data({w: factory(w) for w in widths}, loader, optimizer="adamw", lr=lr, mup=(param == "mup"),
                        nsteps=steps, nseeds=seeds, flatten_output=True, cuda=False, show_progress=progress)
    df = df.groupby(["module", "t", "width"], as_index=False)["l1"].mean()
    slopes: dict[str, dict[int, float]] = {}
    for (module, t), grp in df.groupby(["module", "t"]):
        grp = grp.sort_values("width")
        name = module or "<logits>"
        slopes.setdefault(name, {})[int(t)] = _slope(grp["width"].to_numpy(float), grp["l1"].to_numpy(float))
    judged = [(m, t, s) for m, d in slopes.items() for t, s in d.items() if t >= 2]
    worst = max(judged, key=lambda r: abs(r[2]))
    result = {
        "param": param, "widths": widths, "steps": steps, "lr": lr, "seeds": seeds, "n_layers": n_layers,
        "head_dim": head_dim, "optimizer": "MuAdamW" if param == "mup" else "AdamW",
        "criterion": f"|d log2 l1 / d log2 width| < {SLOPE_TOL} for every module at every t >= 2",
        "passed": all(abs(s) < SLOPE_TOL for _, _, s in judged),
        "worst": {"module": worst[0], "t": worst[1], "slope": worst[2]},
        "n_failing": sum(abs(s) >= SLOPE_TOL for _, _, s in judged),
        "slopes": {m: {str(t): s for t, s in d.items()} for m, d in slopes.items()},
        "l1": df.assign(module=df["module"].replace("", "<logits>")).to_dict(orient="records"),
        "meta": {"scaleplan": __version__, "command": "scaleplan coord-check"},
    }
    if out is not None:
        out = Path(out)
        write_json(out / "coord_check.json", result)
        atomic_write(out / "coord_check.html", figure(result).to_html(include_plotlyjs="cdn"))
    return result


@dataclass
class _Worst:
    module: str
    t: int
    slope: float


@dataclass
class _L1Row:
    module: str
    t: int
    width: int
    l1: float


@dataclass
class _Result:
    """coord_check.json as :func:`coord_check` writes it (the schema :func:`read_result` checks)."""
    param: str
    widths: list[int]
    steps: int
    lr: float
    seeds: int
    n_layers: int
    head_dim: int
    optimizer: str
    criterion: str
    passed: bool
    worst: object
    n_failing: int
    slopes: dict[str, dict[str, float]]
    l1: list[object]
    meta: dict[str, str] = field(default_factory=dict)


_RESULT_RULES = {"param": ("mup", "sp"), "widths": "positive", "steps": "positive", "lr": "positive",
                 "seeds": "positive", "n_layers": "positive", "head_dim": "positive", "n_failing": "nonneg"}
#: Rows of l1 accepted (widths x modules x steps x seeds of a real check are a few thousand).
MAX_L1_ROWS = 200_000


def read_result(path: str | Path) -> dict:
    """A stored coord_check.json, every field checked (planner/schema.py: types, finiteness, ranges,
    known keys, size and nesting limits of planner.io.read_json); UserError naming the file otherwise.
    The one reader for the CLI and the dashboard."""
    from planner.io import read_json
    from planner.schema import check_record

    where, fix = f"{path}", "regenerate it with `scaleplan coord-check --out DIR`"
    d = read_json(path, "coord_check.json")
    check_record(_Result, d, where, fix=fix, rules=_RESULT_RULES)
    check_record(_Worst, d["worst"], f"{where} worst", fix=fix)
    if len(d["l1"]) > MAX_L1_ROWS:
        raise UserError(f"{where} has more than {MAX_L1_ROWS:,} l1 rows; {fix}")
    for i, row in enumerate(d["l1"]):
        check_record(_L1Row, row, f"{where} l1[{i}]", fix=fix, rules={"t": "positive", "width": "positive",
                                                                     "l1": "nonneg"})
    return d


def figure(result: dict):
    """l1 vs width (log-log), one panel per step, one line per module."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    steps = sorted({r["t"] for r in result["l1"]})
    fig = make_subplots(rows=1, cols=len(steps), subplot_titles=[f"t = {t}" for t in steps], shared_yaxes=True)
    modules = sorted({r["module"] for r in result["l1"]})
    for i, t in enumerate(steps, start=1):
        for m in modules:
            pts = sorted((r["width"], r["l1"]) for r in result["l1"] if r["t"] == t and r["module"] == m)
            fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[max(p[1], 1e-12) for p in pts], mode="lines+markers",
                                     name=m, legendgroup=m, showlegend=(i == 1)), row=1, col=i)
        fig.update_xaxes(type="log", title_text="width", row=1, col=i)
    fig.update_yaxes(type="log", title_text="mean |activation|", row=1, col=1)
    verdict = "PASS" if result["passed"] else "FAIL"
    fig.update_layout(title=f"coordinate check, {result['param']}: {verdict} ({result['criterion']})", height=500)
    return fig


def slopes_figure(result: dict):
    """Bars of the fitted slopes (log2 mean|activation| per width doubling) per module and step, with
    the pass band ±``SLOPE_TOL``; None when the result has no slopes."""
    import plotly.graph_objects as go

    slopes = result.get("slopes") or {}
    steps = sorted({int(t) for per_step in slopes.values() for t in per_step})
    if not steps:
        return None
    modules = list(slopes)
    fig = go.Figure()
    for t in steps:
        fig.add_trace(go.Bar(x=modules, y=[slopes[m].get(str(t)) for m in modules], name=f"t = {t}"))
    for y in (SLOPE_TOL, -SLOPE_TOL):
        fig.add_hline(y=y, line_dash="dash", line_color="red")
    fig.update_layout(barmode="group", title="Coordinate-check slopes (flat = width-stable)",
                      xaxis_title="module", yaxis_title="slope of log2 mean|activation| per width doubling")
    return fig

