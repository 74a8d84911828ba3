"""The scaling-law ladder: proxy runs across model sizes x token budgets -> ``runs.csv``.

Conventions (also written into ``study.yaml`` under ``ladder`` and into every runs-table row):

* **N**: the trainer's exact counts from ``run.json`` (``total_params``, ``non_embedding_params``;
  untied embeddings, so embedding params = 2 x vocab x d_model). Sizes hit *non-embedding* targets
  by width alone at the hparams' ``base_depth`` (default: μP transfers the tuned values across
  width, not depth, Tensor Programs V §6.1), or with ``depth=None`` ("free") by
  :func:`planner.shape_search.search_shapes` with the trainer's head size, re-ranked by the
  trainer's own count (its d_ffn rule ``8 * round(8/3 d / 8)``). Widths are multiples of the head size.
* **Token budgets**: ``--tokens-per-param m1,m2,..`` gives D = m x N_non-embedding; ``--flops
  C1,C2,..`` gives D = C / (6 N_total) (the Hoffmann et al. 2022 convention, the same one as the
  ``flops`` column). Budgets are rounded to whole optimizer steps of ``batch x seq_len`` tokens;
  a (size, budget) pair is skipped when it is under ``min_steps`` steps or needs more than
  ``max_epochs`` passes over the training split (Muennighoff et al. 2023: up to ~4 epochs of
  repeated data are nearly as good as unique data; beyond that the ladder would measure repetition).
* **Hyperparameters**: the μP base values of ``hparams.yaml`` at ``base_width``; the trainer
  transfers them to each width (hidden LR / m_d, hidden init / sqrt(m_d), logits / m_d). Batch,
  sequence length, schedule, warmup and cooldown are the same for every run.
* **Schedules**: ``wsd`` (default) trains one warmup + stable phase per size and branches a
  cooldown (``cooldown_frac`` of each budget, 1-sqrt shape) from a checkpoint at each budget
  (Hägele et al. 2024, arXiv:2405.18392: such cooldowns match separate cosine runs for about half
  the compute). ``cosine`` trains every point separately (cosine to 0.1 x peak).
* **compute_used**: FLOPs (6 N_total x tokens) this row added to the ladder. WSD rows of one size
  share the stable phase: a branch is charged the stable tokens between the previous branch point
  and its own, plus its cooldown; summed over a size this is the stable phase once plus all
  cooldowns. Cosine rows are charged their own ``flops``.
* **Layout**: ``STUDY/runs/<size>/branch_<tokens>/run.json`` (WSD), ``STUDY/runs/<size>/cosine_<tokens>/
  run.json`` (cosine), ``STUDY/runs/extra_<size>/`` (held-out larger proxies). ``runs.csv`` is
  rebuilt from the run.json files (each written atomically by the trainer) after every change, so
  a killed ladder leaves no corrupt row and a rerun skips finished points.
"""
from __future__ import annotations

import math
import re
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from planner import __version__
from planner.errors import UserError
from planner.io import atomic_write, ensure_dir, read_json, read_yaml, write_json, write_yaml

RUNS_COLUMNS = ["run_id", "total_params", "non_embedding_params", "tokens", "flops", "final_val_loss",
                "final_train_loss", "schedule", "status", "d_model", "n_layers", "compute_used",
                "role", "size", "tokens_per_param", "n_heads", "head_dim", "d_ffn", "steps", "batch",
                "seq_len", "lr", "warmup_steps", "cooldown_frac", "flops_with_attention", "wall_time_s",
                "run_dir"]
DEFAULT_TOKENS_PER_PARAM = (5.0, 7.0, 10.0, 14.0, 20.0)
DEFAULT_N_RANGE = (1.2e4, 4.0e5)   # non-embedding params: 1.52 decades
MAX_EPOCHS = 4.0
SIZE_RE = re.compile(r"^(\d+):(\d+)$")


# ------------------------------------------------------------------------------------------ sizes
@dataclass(frozen=True)
class Size:
    """One proxy shape with the trainer's exact counts."""
    d_model: int
    n_layers: int
    head_dim: int
    total_params: int
    non_embedding_params: int
    d_ffn: int

    @property
    def name(self) -> str:
        return f"d{self.d_model}-L{self.n_layers}"

    @property
    def n_heads(self) -> int:
        return self.d_model // self.head_dim


def trainer_size(d_model: int, n_layers: int, *, vocab: int, head_dim: int, seq_len: int) -> Size:
    """The shape and counts the proxy trainer builds for (d_model, n_layers) (no torch needed)."""
    from planner.shape import ModelShape

    if d_model % head_dim:
        raise UserError(f"size {d_model}:{n_layers}: d_model {d_model} is not a multiple of the head size "
                        f"{head_dim} (from hparams base_head_dim); choose widths that are")
    d_ffn = max(8, 8 * int(round(8.0 / 3.0 * d_model / 8.0)))  # proxy_train.model.ffn_dim (checked in tests)
    s = ModelShape(n_layers=n_layers, d_model=d_model, d_ffn=d_ffn, n_heads=d_model // head_dim,
                   head_dim=head_dim, vocab_size=vocab, seq_len=seq_len, tied=False)
    return Size(d_model, n_layers, head_dim, int(s.total_params), int(s.non_embedding_params), d_ffn)


def size_for_params(target: float, *, vocab: int, head_dim: int, seq_len: int,
                    aspect: tuple[float, float] = (8.0, 128.0)) -> Size:
    """The trainer shape nearest ``target`` non-embedding params among search_shapes' candidates."""
    from planner.shape_search import search_shapes

    try:
        cands = search_shapes(target, non_embedding=True, vocab_size=vocab, pad_vocab_to=None, head_dim=head_dim,
                              seq_len=seq_len, ffn_rule="swiglu8/3", aspect=aspect, top=25, max_rel_error=1.0)
    except UserError as e:
        raise UserError(f"no proxy shape with head size {head_dim} near {target:.3g} non-embedding params ({e}); "
                        "choose another size or give d_model:n_layers pairs") from None
    best = None
    for c in cands:
        s = trainer_size(c.shape.d_model, c.shape.n_layers, vocab=vocab, head_dim=head_dim, seq_len=seq_len)
        err = abs(math.log(s.non_embedding_params / target))
        if best is None or err < best[0] - 1e-12:
            best = (err, s)
    return best[1]


def size_at_depth(target: float, depth: int, *, vocab: int, head_dim: int, seq_len: int) -> Size:
    """The width (a multiple of the head size) at fixed depth nearest ``target`` non-embedding params."""
    best = None
    for d in range(head_dim, 256 * head_dim + 1, head_dim):
        s = trainer_size(d, depth, vocab=vocab, head_dim=head_dim, seq_len=seq_len)
        err = abs(math.log(s.non_embedding_params / target))
        if best is None or err < best[0]:
            best = (err, s)
        if s.non_embedding_params > 2 * target:
            break
    return best[1]


def parse_sizes(text: str | None, *, vocab: int, head_dim: int, seq_len: int, n_sizes: int = 5,
                n_range: tuple[float, float] = DEFAULT_N_RANGE, depth: int | None = None) -> list[Size]:
    """``auto`` (n_sizes log-spaced targets over n_range), ``d:L,d:L,..`` or non-embedding counts.

    With ``depth`` the targets are met by width alone at that depth (μP transfers the tuned values
    across width, not depth); without it search_shapes picks width and depth."""
    text = (text or "auto").strip()
    if text == "auto":
        if n_sizes < 2:
            raise UserError(f"--n-sizes must be at least 2 for a ladder, got {n_sizes}")
        lo, hi = n_range
        if not (0 < lo < hi):
            raise UserError(f"--n-range needs 0 < LO < HI, got {lo:g},{hi:g}")
        targets = np.geomspace(lo, hi, n_sizes)
        if depth:  # each target takes the nearest width not taken yet (widths are coarse when small)
            cands = [trainer_size(d, depth, vocab=vocab, head_dim=head_dim, seq_len=seq_len)
                     for d in range(head_dim, 256 * head_dim + 1, head_dim)]
            cands = [c for c in cands if lo / 2 <= c.non_embedding_params <= hi * 2]
            sizes = []
            for t in targets:
                free = [c for c in cands if c not in sizes]
                if free:
                    sizes.append(min(free, key=lambda c: abs(math.log(c.non_embedding_params / t))))
        else:
            sizes = [size_for_params(t, vocab=vocab, head_dim=head_dim, seq_len=seq_len) for t in targets]
    else:
        sizes = []
        for item in (t.strip() for t in text.split(",")):
            if not item:
                continue
            m = SIZE_RE.match(item)
            if m:
                d, L = int(m.group(1)), int(m.group(2))
                if d <= 0 or L <= 0:
                    raise UserError(f"--sizes entry {item!r}: d_model and n_layers must be positive")
                sizes.append(trainer_size(d, L, vocab=vocab, head_dim=head_dim, seq_len=seq_len))
                continue
            try:
                n = float(item)
            except ValueError:
                raise UserError(f"--sizes entry {item!r} is neither d_model:n_layers (e.g. 64:2) nor a "
                                "non-embedding parameter count (e.g. 1e5); fix the list") from None
            if not (math.isfinite(n) and n >= 1000):
                raise UserError(f"--sizes entry {item!r}: a parameter count must be a number >= 1000")
            sizes.append(size_at_depth(n, depth, vocab=vocab, head_dim=head_dim, seq_len=seq_len) if depth else
                         size_for_params(n, vocab=vocab, head_dim=head_dim, seq_len=seq_len))
    uniq = sorted({s.name: s for s in sizes}.values(), key=lambda s: s.non_embedding_params)
    if len(uniq) < 2:
        raise UserError(f"the ladder needs at least 2 distinct sizes, got {[s.name for s in uniq]}; "
                        "give more sizes or a wider --n-range")
    return uniq


def parse_number_list(text: str, what: str) -> list[float]:
    try:
        vals = [float(t) for t in str(text).split(",") if t.strip()]
    except ValueError:
        raise UserError(f"{what} must be comma-separated numbers like 5,10,20, got {text!r}") from None
    if not vals or any(not (math.isfinite(v) and v > 0) for v in vals):
        raise UserError(f"{what} must be positive finite numbers, got {text!r}")
    return sorted(set(vals))


# ------------------------------------------------------------------------------------------ plan
@dataclass
class Point:
    size: Size
    tokens: int
    steps: int
    tokens_per_param: float
    role: str = "ladder"  # ladder | holdout_extra


@dataclass
class LadderSpec:
    """Everything that defines a ladder (stored in study.yaml; a rerun must match it)."""
    data: str
    hparams: str
    sizes: list[Size]
    tokens_per_param: list[float] | None = None
    flops: list[float] | None = None
    schedule: str = "wsd"
    batch: int = 16
    seq_len: int = 128
    cooldown_frac: float = 0.2
    seed: int = 0
    eval_batches: int = 16
    evals_per_run: int = 4
    min_steps: int = 1
    max_epochs: float = MAX_EPOCHS
    holdout_extra: bool = False
    depth: int | None = None    # fixed n_layers for auto/count sizes and the extra proxy (None: free)
    holdout_top: int = 2        # ladder points (highest compute) held out of the check's fit
    extra_compute_mult: float = 4.0
    extra_size_mult: float = 2.0
    train_fields: dict = field(default_factory=dict)  # TrainConfig fields from hparams.yaml
    data_meta: dict = field(default_factory=dict)

    @property
    def tokens_per_step(self) -> int:
        return self.batch * self.seq_len


def _budget_tokens(spec: LadderSpec, s: Size) -> list[tuple[int, float]]:
    """(tokens, tokens_per_param) per budget for size s, before rounding and skipping."""
    if spec.flops:
        return [(int(C / (6.0 * s.total_params)), C / (6.0 * s.total_params) / s.non_embedding_params)
                for C in spec.flops]
    return [(int(round(m * s.non_embedding_params)), m) for m in spec.tokens_per_param]


def plan_points(spec: LadderSpec) -> tuple[list[Point], list[dict]]:
    """All ladder points and the skipped (size, budget) pairs with the reason."""
    tps = spec.tokens_per_step
    max_tokens = spec.max_epochs * int(spec.data_meta.get("train_tokens", 0) or 0)
    points, skipped = [], []
    for s in spec.sizes:
        seen = set()
        for tokens, m in _budget_tokens(spec, s):
            steps = max(0, int(round(tokens / tps)))
            why = None
            if steps < max(1, spec.min_steps):
                why = f"{tokens:,} tokens is under {max(1, spec.min_steps)} step(s) of {tps:,} tokens"
            elif max_tokens and steps * tps > max_tokens:
                why = (f"{steps * tps:,} tokens is over {spec.max_epochs:g} epochs of the "
                       f"{int(spec.data_meta['train_tokens']):,}-token training split")
            elif steps in seen:
                why = "same step count as another budget of this size"
            if why:
                skipped.append({"size": s.name, "tokens": tokens, "reason": why})
                continue
            seen.add(steps)
            points.append(Point(s, steps * tps, steps, steps * tps / s.non_embedding_params))
    if not points:
        raise UserError("no (size, budget) pair is trainable: " + "; ".join(
            f"{k['size']} {k['reason']}" for k in skipped[:3]) + "; raise the budgets or lower the sizes")
    sizes_with = {p.size.name for p in points}
    if len(sizes_with) < 2:
        raise UserError(f"only size {sorted(sizes_with)} has trainable budgets; raise the --flops budgets "
                        "(or lower --sizes) so that at least two sizes get a point")
    if spec.holdout_extra:
        points += extra_points(spec, points)
    return points, skipped


def heldout_ladder_points(spec: LadderSpec, points: list[Point]) -> list[Point]:
    """The ``holdout_top`` ladder points of highest compute (6 N_total D): predicted, not fitted."""
    ladder = [p for p in points if p.role == "ladder"]
    k = min(spec.holdout_top, max(0, len(ladder) - 8))  # keep >= 8 rows for the 5-parameter fit
    return sorted(ladder, key=lambda p: 6.0 * p.size.total_params * p.tokens)[len(ladder) - k:] if k else []


def extra_points(spec: LadderSpec, points: list[Point]) -> list[Point]:
    """One larger held-out proxy: N_non-emb ~ ``extra_size_mult`` x the largest ladder size and
    D such that its compute is >= ``extra_compute_mult`` x the largest *fitted* compute (both in
    6 N_total D and in 6 N_non-emb D)."""
    held = {(p.size.name, p.tokens) for p in heldout_ladder_points(spec, points)}
    fitted = [p for p in points if p.role == "ladder" and (p.size.name, p.tokens) not in held]
    biggest = max(spec.sizes, key=lambda s: s.non_embedding_params)
    head_dim = biggest.head_dim
    target = spec.extra_size_mult * biggest.non_embedding_params
    kw = dict(vocab=int(spec.data_meta["vocab_size"]), head_dim=head_dim, seq_len=spec.seq_len)
    s = size_at_depth(target, spec.depth, **kw) if spec.depth else size_for_params(target, **kw)
    c_tot = max(6.0 * p.size.total_params * p.tokens for p in fitted)
    c_ne = max(6.0 * p.size.non_embedding_params * p.tokens for p in fitted)
    need = max(spec.extra_compute_mult * c_tot / (6.0 * s.total_params),
               spec.extra_compute_mult * c_ne / (6.0 * s.non_embedding_params))
    steps = math.ceil(need / spec.tokens_per_step)
    tokens = steps * spec.tokens_per_step
    return [Point(s, tokens, steps, tokens / s.non_embedding_params, role="holdout_extra")]


# ------------------------------------------------------------------------------------------ configs
def load_spec(*, data: str, hparams: str, sizes: str | None = "auto", n_sizes: int = 5,
              n_range: tuple[float, float] = DEFAULT_N_RANGE, tokens_per_param: str | None = None,
              flops: str | None = None, schedule: str = "wsd", batch: int = 16, seq_len: int = 128,
              cooldown_frac: float = 0.2, seed: int = 0, holdout_extra: bool = False, min_steps: int = 1,
              max_epochs: float = MAX_EPOCHS, eval_batches: int = 16, depth: str | int | None = "base") -> LadderSpec:
    """Validate the options (UserError on bad input) and build the ladder spec.

    ``depth``: "base" (the hparams' base_depth; default), "free" (search_shapes picks it) or an int."""
    from proxy_train.config import hparams_overrides

    data_dir = Path(data)
    if not (data_dir / "meta.json").is_file():
        raise UserError(f"data folder {data} has no meta.json; make it with `scaleplan data prepare --out {data}`")
    meta = read_json(data_dir / "meta.json", "data meta.json")
    for key in ("vocab_size", "train_tokens", "sha256"):
        if key not in meta:
            raise UserError(f"data folder {data}: meta.json lacks {key!r}; re-run `scaleplan data prepare`")
    if not Path(hparams).is_file():
        raise UserError(f"hparams file not found: {hparams}; make it with `scaleplan sweep export --study DIR`")
    fields = hparams_overrides(hparams, int(meta["vocab_size"]))
    fields.pop("extra", None)
    param = fields.get("parameterization")
    if param != "mup":
        raise UserError(f"hparams file {hparams} has parameterization {param!r}; the ladder transfers "
                        "hyperparameters across widths with μP, so it needs `parameterization: mup` "
                        "(re-run the sweep with --param mup)")
    base_width = fields.get("base_width")
    head_dim = int(fields.get("head_dim") or 32)
    if not isinstance(base_width, int) or base_width <= 0 or base_width % head_dim:
        raise UserError(f"hparams file {hparams}: base_width {base_width!r} must be a positive multiple of "
                        f"base_head_dim {head_dim}; regenerate it with `scaleplan sweep export`")
    if schedule not in ("wsd", "cosine"):
        raise UserError(f"--schedule must be wsd or cosine, got {schedule!r}")
    if (tokens_per_param is None) == (flops is None):
        if tokens_per_param is None and flops is None:
            tokens_per_param = ",".join(f"{m:g}" for m in DEFAULT_TOKENS_PER_PARAM)
        else:
            raise UserError("give either --tokens-per-param or --flops, not both")
    if not (0.0 < cooldown_frac < 1.0):
        raise UserError(f"--cooldown-frac must be in (0, 1), got {cooldown_frac}")
    vocab = int(meta["vocab_size"])
    if depth == "base":
        depth = fields.get("base_depth")
    elif depth == "free":
        depth = None
    if depth is not None:
        try:
            depth = int(depth)
        except (TypeError, ValueError):
            raise UserError(f"--depth must be base, free or a positive integer, got {depth!r}") from None
        if depth <= 0:
            raise UserError(f"--depth must be a positive integer, got {depth}")
    size_list = parse_sizes(sizes, vocab=vocab, head_dim=head_dim, seq_len=seq_len, n_sizes=n_sizes,
                            n_range=n_range, depth=depth)
    spec = LadderSpec(
        data=str(data_dir.resolve()), hparams=str(Path(hparams).resolve()), sizes=size_list,
        tokens_per_param=parse_number_list(tokens_per_param, "--tokens-per-param") if tokens_per_param else None,
        flops=parse_number_list(flops, "--flops") if flops else None, schedule=schedule, batch=batch,
        seq_len=seq_len, cooldown_frac=cooldown_frac, seed=seed, holdout_extra=holdout_extra,
        min_steps=min_steps, max_epochs=max_epochs, eval_batches=eval_batches, train_fields=fields, depth=depth,
        data_meta={k: meta[k] for k in ("vocab_size", "train_tokens", "val_tokens", "sha256") if k in meta})
    if seq_len + 1 > int(meta.get("val_tokens", 10 ** 12)):
        raise UserError(f"--seq-len {seq_len} is longer than the validation split; use a shorter one")
    return spec


def train_config(spec: LadderSpec, size: Size, *, tokens: int | None = None, schedule: str | None = None,
                 eval_every: int | None = None, command: str = ""):
    """The TrainConfig of one ladder run (hparams transferred by the trainer's μP rules)."""
    from proxy_train.config import TrainConfig

    f = dict(spec.train_fields)
    f["head_dim"] = size.head_dim
    return TrainConfig(
        data=spec.data, d_model=size.d_model, n_layers=size.n_layers, batch=spec.batch, seq_len=spec.seq_len,
        schedule=schedule or spec.schedule, cooldown_frac=spec.cooldown_frac, seed=spec.seed, threads=1,
        tokens=tokens, eval_every=eval_every, eval_batches=spec.eval_batches, progress=False,
        extra={"command": command, "hparams_file": spec.hparams}, **f).validate()


# ------------------------------------------------------------------------------------------ tasks
def _task_wsd(spec: LadderSpec, size: Size, budgets: list[int], out_dir: str, command: str) -> list[dict]:
    from proxy_train.train import train_wsd_branches

    small = min(budgets) // spec.tokens_per_step
    cfg = train_config(spec, size, tokens=max(budgets), schedule="wsd",
                       eval_every=max(1, small // max(1, spec.evals_per_run)), command=command)
    return [_brief(r) for r in train_wsd_branches(cfg, budgets, out_dir, cooldown_frac=spec.cooldown_frac)]


def _task_single(spec: LadderSpec, size: Size, tokens: int, schedule: str, out_dir: str, command: str) -> list[dict]:
    from proxy_train.train import train

    steps = tokens // spec.tokens_per_step
    cfg = train_config(spec, size, tokens=tokens, schedule=schedule,
                       eval_every=max(1, steps // max(1, spec.evals_per_run)), command=command)
    return [_brief(train(cfg, out_dir))]


def _brief(rec: dict) -> dict:
    return {k: v for k, v in rec.items() if k not in ("curve", "config", "hyperparameters", "shape")}


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)  # one core per worker: OpenMP threads spin-wait on a shared machine


def tasks_for(spec: LadderSpec, points: list[Point], study: Path, command: str) -> list[tuple]:
    """(key, function, args, run_dirs) per task, largest compute first (so workers stay balanced)."""
    runs = study / "runs"
    tasks = []
    by_size: dict[str, list[Point]] = {}
    for p in points:
        if p.role == "ladder":
            by_size.setdefault(p.size.name, []).append(p)
    for name, pts in by_size.items():
        size = pts[0].size
        if spec.schedule == "wsd":
            budgets = sorted(p.tokens for p in pts)
            dirs = [runs / name / f"branch_{b}" for b in budgets]
            cost = size.total_params * (max(budgets) + spec.cooldown_frac * sum(budgets))
            tasks.append((name, _task_wsd, (spec, size, budgets, str(runs / name), command), dirs, cost))
        else:
            for p in pts:
                d = runs / name / f"cosine_{p.tokens}"
                tasks.append((f"{name}/{p.tokens}", _task_single, (spec, size, p.tokens, "cosine", str(d), command),
                              [d], size.total_params * p.tokens))
    for p in points:
        if p.role == "holdout_extra":
            d = runs / f"extra_{p.size.name}" / f"{spec.schedule}_{p.tokens}"
            tasks.append((f"extra {p.size.name}", _task_single, (spec, p.size, p.tokens, spec.schedule, str(d),
                                                                  command), [d], p.size.total_params * p.tokens))
    tasks.sort(key=lambda t: -t[4])
    return [t[:4] for t in tasks]


def _is_final(run_dir: Path) -> bool:
    try:
        return read_json(run_dir / "run.json").get("status") in ("ok", "diverged")
    except UserError:
        return False


# ------------------------------------------------------------------------------------------ table
def collect_rows(spec: LadderSpec, points: list[Point], study: Path) -> list[dict]:
    """One row per point whose run.json exists (docs/CONTRACTS.md runs-table columns + extras)."""
    runs = study / "runs"
    rows = []
    for p in points:
        if p.role == "ladder":
            d = runs / p.size.name / (f"branch_{p.tokens}" if spec.schedule == "wsd" else f"cosine_{p.tokens}")
        else:
            d = runs / f"extra_{p.size.name}" / f"{spec.schedule}_{p.tokens}"
        path = d / "run.json"
        if not path.is_file():
            continue
        try:
            r = read_json(path)
        except UserError:
            continue  # cannot happen with atomic writes; a foreign file is skipped, not trusted
        if (r.get("config") or {}).get("tokens") != p.tokens:
            continue  # a record of another budget (an older ladder in this folder); a diverged run keeps its budget here
        groups = {g["kind"]: g for g in r.get("hyperparameters", {}).get("groups", [])}
        hidden_lr = next((g["lr"] for k, g in groups.items() if k.startswith("hidden")), None)
        rows.append({
            "run_id": f"{p.role}-{p.size.name}-t{p.tokens}-{spec.schedule}", "total_params": r["total_params"],
            "non_embedding_params": r["non_embedding_params"], "tokens": r["tokens"], "flops": r["flops"],
            "final_val_loss": r.get("final_val_loss"), "final_train_loss": r.get("final_train_loss"),
            "schedule": spec.schedule, "status": r.get("status"), "d_model": r["d_model"],
            "n_layers": r["n_layers"], "compute_used": None, "role": p.role, "size": p.size.name,
            "tokens_per_param": r["tokens"] / r["non_embedding_params"], "n_heads": p.size.n_heads,
            "head_dim": p.size.head_dim, "d_ffn": p.size.d_ffn, "steps": r.get("steps"), "batch": spec.batch,
            "seq_len": spec.seq_len, "lr": hidden_lr, "warmup_steps":
                r.get("branch", {}).get("warmup_steps", r.get("hyperparameters", {}).get("base", {}).get("warmup_steps")),
            "cooldown_frac": spec.cooldown_frac if spec.schedule == "wsd" else None,
            "flops_with_attention": r.get("flops_with_attention"), "wall_time_s": r.get("wall_time_s"),
            "run_dir": str(d.relative_to(study)), "_stable_end": r.get("branch", {}).get("stable_end_tokens"),
        })
    _charge_compute(rows)
    for row in rows:
        row.pop("_stable_end")
    rows.sort(key=lambda r: (r["role"] != "ladder", r["non_embedding_params"], r["tokens"]))
    return rows


def _charge_compute(rows: list[dict]) -> None:
    """Fill ``compute_used`` (see the module docstring)."""
    by_size: dict[str, list[dict]] = {}
    for r in rows:
        if r["_stable_end"] is not None and r["role"] == "ladder":
            by_size.setdefault(r["size"], []).append(r)
        else:
            r["compute_used"] = r["flops"]
    for rs in by_size.values():
        rs.sort(key=lambda r: r["tokens"])
        prev = 0
        for r in rs:  # a run that diverged in the stable phase stopped before its branch point
            reached = min(r["tokens"], r["_stable_end"])
            stable = max(0, reached - prev)
            prev = max(prev, reached)
            r["compute_used"] = 6.0 * r["total_params"] * (stable + max(0, r["tokens"] - r["_stable_end"]))


def write_table(rows: list[dict], study: Path, parquet: bool = False) -> Path:
    import pandas as pd

    df = pd.DataFrame(rows, columns=RUNS_COLUMNS)
    path = atomic_write(study / "runs.csv", df.to_csv(index=False))
    if parquet:
        import io

        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        atomic_write(study / "runs.parquet", buf.getvalue())
    return path


# ------------------------------------------------------------------------------------------ study.yaml
def spec_record(spec: LadderSpec, points: list[Point], skipped: list[dict], command: str) -> dict:
    from proxy_train.train import versions

    f = spec.train_fields
    return {
        "command": command, "scaleplan": __version__, "versions": {k: str(v) for k, v in versions().items()},
        "data": {"path": spec.data, **spec.data_meta}, "hparams": spec.hparams,
        "hyperparameters": {k: (list(v) if isinstance(v, tuple) else v) for k, v in f.items()},
        "schedule": spec.schedule,
        "schedule_detail": (f"WSD: linear warmup ({f.get('warmup_frac', 0.05)} x the smallest budget's steps), "
                            f"constant peak LR, 1-sqrt cooldown over the last {spec.cooldown_frac:g} of each budget "
                            "to 0.1 x peak, branched from the shared stable phase (Hägele et al. 2024)"
                            if spec.schedule == "wsd" else
                            f"cosine: linear warmup ({f.get('warmup_frac', 0.05)} x steps), half-cosine to 0.1 x "
                            "peak at the end of each run; every point is a separate run"),
        "batch": {"sequences": spec.batch, "seq_len": spec.seq_len, "tokens_per_step": spec.tokens_per_step},
        "budgets": ({"tokens_per_param": spec.tokens_per_param, "convention": "D = m x N_non-embedding"}
                    if spec.tokens_per_param else
                    {"flops": spec.flops, "convention": "D = C / (6 N_total), rounded to whole steps"}),
        "sizes": [{**asdict(s), "name": s.name} for s in spec.sizes],
        "depth": spec.depth if spec.depth else "free (search_shapes picks width and depth)",
        "points": [{"size": p.size.name, "tokens": p.tokens, "steps": p.steps, "role": p.role,
                    "tokens_per_param": p.tokens_per_param} for p in points],
        "skipped": skipped, "seed": spec.seed, "eval_batches": spec.eval_batches,
        "holdout_top": spec.holdout_top, "holdout_extra": spec.holdout_extra,
        "n_convention": "total_params / non_embedding_params are the trainer's exact counts (untied embeddings)",
        "flops_convention": "flops = 6 N_total D (Hoffmann et al. 2022); compute_used: see proxy_train/ladder.py",
    }


def update_study_yaml(study: Path, key: str, value: Any) -> None:
    """Set ``key`` in STUDY/study.yaml, keeping the other keys (read, merge, atomic write)."""
    path = study / "study.yaml"
    cur = read_yaml(path, "study.yaml") if path.is_file() else {}
    if not isinstance(cur, dict):
        cur = {}
    cur[key] = value
    write_yaml(path, cur)


# ------------------------------------------------------------------------------------------ run
def run_ladder(spec: LadderSpec, study: str | Path, *, workers: int = 2, parquet: bool = False,
               command: str = "", progress: bool = True) -> dict:
    """Train every pending point with ``workers`` processes; rebuild runs.csv as results arrive."""
    from tqdm import tqdm

    study = ensure_dir(study, "study folder")
    points, skipped = plan_points(spec)
    update_study_yaml(study, "ladder", spec_record(spec, points, skipped, command))
    tasks = tasks_for(spec, points, study, command)
    n_points = sum(len(t[3]) for t in tasks)
    done_before = sum(_is_final(d) for t in tasks for d in t[3])
    pending = [t for t in tasks if not all(_is_final(d) for d in t[3])]
    t0 = time.perf_counter()
    bar = tqdm(total=n_points, initial=done_before, desc="ladder points", unit="run", file=sys.stderr,
               disable=not progress)
    errors: list[str] = []

    def refresh():
        rows = collect_rows(spec, points, study)
        write_table(rows, study, parquet)
        n_done = sum(r["status"] in ("ok", "diverged") for r in rows)
        bar.update(max(0, n_done - bar.n))
        return rows

    refresh()
    if pending:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=max(1, min(workers, len(pending))), mp_context=ctx,
                                 initializer=_worker_init) as pool:
            futs = {pool.submit(fn, *args): key for key, fn, args, _ in pending}
            while futs:
                finished, _ = wait(list(futs), timeout=5.0, return_when=FIRST_COMPLETED)
                for f in finished:
                    key = futs.pop(f)
                    exc = f.exception()
                    if exc is not None:
                        errors.append(f"{key}: {type(exc).__name__}: {exc}")
                refresh()
    rows = refresh()
    bar.close()
    ok = [r for r in rows if r["status"] == "ok"]
    summary = {
        "study": str(study), "runs_table": str(study / "runs.csv"), "points": n_points,
        "finished_before": done_before, "ok": len(ok), "diverged": sum(r["status"] == "diverged" for r in rows),
        "missing": n_points - len(rows), "skipped_pairs": skipped, "errors": errors,
        "compute_used": float(sum(r["compute_used"] or 0 for r in rows)),
        "compute_separate_runs": float(sum(r["flops"] for r in rows)),
        "wall_s": time.perf_counter() - t0, "schedule": spec.schedule,
        "sizes": [s.name for s in spec.sizes],
        "non_embedding_decades": math.log10(spec.sizes[-1].non_embedding_params / spec.sizes[0].non_embedding_params),
    }
    if errors:
        raise UserError(f"{len(errors)} ladder task(s) failed (first: {errors[0]}); fix the cause and rerun the "
                        "same command to resume (finished points are kept)")
    return summary


# ------------------------------------------------------------------------------------------ held-out check
def holdout_check(study: str | Path, *, n_col: str = "non_embedding_params", top: int | None = None,
                  bootstrap: int = 200, seed: int = 0, n_jobs: int = 2, write: bool = True) -> dict:
    """Fit L(N, D) on all but the highest-compute runs; predict those and report the errors.

    Held out: every ``holdout_extra`` row plus the ``top`` ladder rows of highest ``flops``
    (default: the number the ladder planned, study.yaml ``ladder.holdout_top``). Prediction
    intervals (95 %): bootstrap parameter samples x a resampled log residual of the fit, as
    ``scaleplan fit`` reports them. Writes ``holdout.json``, ``holdout.html`` and ``holdout.fig.json``.
    """
    import pandas as pd

    from planner.fit import ChinchillaFitter

    study = Path(study)
    path = study / "runs.csv"
    if not path.is_file():
        raise UserError(f"{path} not found; run `scaleplan ladder --study {study} ...` first")
    df = pd.read_csv(path)
    df = df[df["status"] == "ok"].copy()
    if n_col not in df.columns:
        raise UserError(f"runs table has no column {n_col!r}; use non_embedding_params or total_params")
    if top is None:
        st = read_yaml(study / "study.yaml", "study.yaml") if (study / "study.yaml").is_file() else {}
        top = int(((st or {}).get("ladder") or {}).get("holdout_top", 2))
    ladder = df[df["role"] == "ladder"].sort_values("flops", kind="stable")
    k = min(int(top), max(0, len(ladder) - 8))
    held = pd.concat([ladder.iloc[len(ladder) - k:] if k else ladder.iloc[:0], df[df["role"] != "ladder"]])
    fit_rows = df.drop(index=held.index)
    if held.empty:
        raise UserError("nothing to hold out: the ladder has too few runs (need > 8 ok ladder runs or a "
                        "--holdout-extra run)")
    if len(fit_rows) < 7:
        raise UserError(f"only {len(fit_rows)} ok runs remain to fit; the 5-parameter law needs at least 7")
    fitter = ChinchillaFitter(bootstrap=bootstrap, seed=seed, n_jobs=n_jobs)
    fitter.fit(fit_rows[n_col].to_numpy(), fit_rows["tokens"].to_numpy(), fit_rows["final_val_loss"].to_numpy())
    N, D, L = (held[c].to_numpy(dtype=float) for c in (n_col, "tokens", "final_val_loss"))
    pred = fitter.predict(N, D)
    s = fitter.samples_
    boot = s[:, 0:1] + s[:, 1:2] / N[None, :] ** s[:, 3:4] + s[:, 2:3] / D[None, :] ** s[:, 4:5]
    rng = np.random.default_rng(seed + 1)
    noisy = boot * np.exp(rng.choice(fitter.residuals_, size=boot.shape, replace=True))
    lo, hi = np.nanpercentile(noisy, 2.5, axis=0), np.nanpercentile(noisy, 97.5, axis=0)
    rel = (pred - L) / L
    max_fit_flops = float(fit_rows["flops"].max())
    rows = []
    for (_, r), p, a, b, e in zip(held.iterrows(), pred, lo, hi, rel):
        rows.append({"run_id": r["run_id"], "role": r["role"], "N": float(r[n_col]), "D": float(r["tokens"]),
                     "flops": float(r["flops"]), "compute_vs_max_fitted": float(r["flops"]) / max_fit_flops,
                     "measured": float(r["final_val_loss"]), "predicted": float(p), "lo": float(a), "hi": float(b),
                     "rel_error": float(e), "inside_interval": bool(a <= r["final_val_loss"] <= b)})
    out = {
        "n_fit": int(len(fit_rows)), "n_heldout": len(rows), "n_col": n_col, "d_col": "tokens",
        "loss_col": "final_val_loss", "max_fitted_flops": max_fit_flops,
        "fit": {**fitter.params_, "ci": fitter.ci_, "converged": fitter.converged_, "warnings": fitter.warnings_},
        "max_abs_rel_error": float(np.max(np.abs(rel))), "mean_abs_rel_error": float(np.mean(np.abs(rel))),
        "frac_inside_interval": float(np.mean([r["inside_interval"] for r in rows])),
        "goal": {"max_abs_rel_error": 0.015, "met": bool(np.max(np.abs(rel)) <= 0.015)},
        "rows": rows,
        "method": "fit on all ok runs except the held-out ones (Chinchilla Approach 3, Huber delta 1e-3, "
                  f"{bootstrap} bootstrap resamples); 95% prediction interval = bootstrap law x resampled residual",
        "meta": {"scaleplan": __version__, "runs_table": str(path)},
    }
    if write:
        write_json(study / "holdout.json", out)
        fig = holdout_figure(fit_rows, held, fitter, out, n_col)
        atomic_write(study / "holdout.fig.json", fig.to_json())
        atomic_write(study / "holdout.html", fig.to_html(include_plotlyjs=True, full_html=True))
    return out


def holdout_figure(fit_rows, held, fitter, out: dict, n_col: str):
    """Loss vs tokens per size: fitted runs, the law's curves, held-out points with intervals."""
    import plotly.graph_objects as go

    fig = go.Figure()
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
    import pandas as pd

    allrows = pd.concat([fit_rows, held])
    for i, (n, part) in enumerate(sorted(allrows.groupby(n_col), key=lambda kv: kv[0])):
        color = palette[i % len(palette)]
        d = np.geomspace(part["tokens"].min() / 1.5, part["tokens"].max() * 1.5, 60)
        fig.add_trace(go.Scatter(x=d, y=fitter.predict(np.full_like(d, n), d), mode="lines",
                                 line={"color": color, "dash": "dot"}, name=f"law, N={n:,.0f}"))
        fp = part[part.index.isin(fit_rows.index)]
        if len(fp):
            fig.add_trace(go.Scatter(x=fp["tokens"], y=fp["final_val_loss"], mode="markers",
                                     marker={"color": color}, name=f"fitted, N={n:,.0f}"))
    h = out["rows"]
    fig.add_trace(go.Scatter(
        x=[r["D"] for r in h], y=[r["predicted"] for r in h], mode="markers", name="held out: predicted, 95% PI",
        marker={"symbol": "line-ew-open", "size": 14, "color": "gray"},
        error_y={"type": "data", "symmetric": False, "array": [max(0.0, r["hi"] - r["predicted"]) for r in h],
                 "arrayminus": [max(0.0, r["predicted"] - r["lo"]) for r in h]}))
    fig.add_trace(go.Scatter(
        x=[r["D"] for r in h], y=[r["measured"] for r in h], mode="markers", name="held out: measured",
        marker={"symbol": "star", "size": 13, "color": "black"},
        text=[f"{r['run_id']}: predicted {r['predicted']:.4f}, error {r['rel_error']:+.2%}" for r in h]))
    fig.update_layout(title=f"Held-out check: max |error| {out['max_abs_rel_error']:.2%} "
                            f"({sum(r['inside_interval'] for r in h)}/{len(h)} inside the 95% interval)",
                      xaxis={"title": "tokens D", "type": "log"}, yaxis={"title": "final val loss (nats/token)"})
    return fig


__all__ = ["Size", "Point", "LadderSpec", "trainer_size", "size_for_params", "parse_sizes", "load_spec",
           "plan_points", "extra_points", "run_ladder", "collect_rows", "write_table", "holdout_check",
           "holdout_figure", "RUNS_COLUMNS", "update_study_yaml", "train_config"]
