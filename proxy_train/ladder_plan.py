"""What a ladder trains: ``LadderSpec`` (validated options), its points (size x token budget) and
the TrainConfig of each run.

Conventions:
* **Token budgets**: ``tokens_per_param`` m gives D = m x N_non-embedding; ``flops`` C gives
  D = C / (6 N_total) (the Hoffmann et al. 2022 convention, the same one as the ``flops`` column).
  Budgets are rounded to whole optimizer steps of ``batch x seq_len`` tokens; a (size, budget) pair
  is skipped when it is under ``min_steps`` steps or needs more than ``max_epochs`` passes over the
  training split (Muennighoff et al. 2023: up to ~4 epochs of repeated data are nearly as good as
  unique data; beyond that the ladder would measure repetition).
* **Hyperparameters**: the μP base values of hparams.yaml (``planner.hparams.HParams``) at
  ``base_width``; the trainer transfers them to each width (``TrainConfig.from_hparams``). Batch,
  sequence length, schedule, warmup and cooldown are the same for every run.
* **Held-out extra proxy** (``holdout_extra``): one larger proxy, N_non-emb ~ ``extra_size_mult`` x
  the largest size, with compute >= ``extra_compute_mult`` x the largest *fitted* compute.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from planner.errors import UserError
from planner.hparams import HParams
from planner.holdout import MIN_LADDER_ROWS_KEPT
from planner.shape import ModelShape
from proxy_train.config import DEFAULT_HEAD_DIM, TrainConfig, check_tuned_vocab
from proxy_train.data import TokenData
from proxy_train.ladder_sizes import DEFAULT_N_RANGE, parse_sizes, size_at_depth, size_for_params

DEFAULT_TOKENS_PER_PARAM = (5.0, 7.0, 10.0, 14.0, 20.0)
MAX_EPOCHS = 4.0


def parse_number_list(text: str, what: str) -> list[float]:
    try:
        vals = [float(t) for t in str(text).split(",") if t.strip()]
    except ValueError:
        raise UserError(f"{what} must be comma-separated numbers like 5,10,20, got {text!r}") from None
    if not vals or any(not (math.isfinite(v) and v > 0) for v in vals):
        raise UserError(f"{what} must be positive finite numbers, got {text!r}")
    return sorted(set(vals))


@dataclass
class Point:
    size: ModelShape
    tokens: int
    steps: int
    tokens_per_param: float
    role: str = "ladder"  # ladder | holdout_extra


@dataclass
class LadderSpec:
    """Everything that defines a ladder (stored in study.yaml; a rerun must match it)."""
    data: str
    hparams: str                # path of hparams.yaml
    sizes: list[ModelShape]
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
    hp: HParams | None = None   # the tuned values read from ``hparams``
    data_meta: dict = field(default_factory=dict)

    @property
    def tokens_per_step(self) -> int:
        return self.batch * self.seq_len


# ------------------------------------------------------------------------------------------ points
def _budget_tokens(spec: LadderSpec, s: ModelShape) -> list[tuple[int, float]]:
    """(tokens, tokens_per_param) per budget for size s, before rounding and skipping."""
    if spec.flops:
        return [(int(C / (6.0 * s.total_params)), C / (6.0 * s.total_params) / s.non_embedding_params)
                for C in spec.flops]
    return [(int(round(m * s.non_embedding_params)), m) for m in spec.tokens_per_param]


def _size_points(spec: LadderSpec, s: ModelShape, max_tokens: float) -> tuple[list[Point], list[dict]]:
    tps = spec.tokens_per_step
    points, skipped, seen = [], [], set()
    for tokens, _ in _budget_tokens(spec, s):
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
    return points, skipped


def plan_points(spec: LadderSpec) -> tuple[list[Point], list[dict]]:
    """All ladder points and the skipped (size, budget) pairs with the reason."""
    max_tokens = spec.max_epochs * int(spec.data_meta.get("train_tokens", 0) or 0)
    points, skipped = [], []
    for s in spec.sizes:
        p, k = _size_points(spec, s, max_tokens)
        points += p
        skipped += k
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
    k = min(spec.holdout_top, max(0, len(ladder) - MIN_LADDER_ROWS_KEPT))
    return sorted(ladder, key=lambda p: 6.0 * p.size.total_params * p.tokens)[len(ladder) - k:] if k else []


def extra_points(spec: LadderSpec, points: list[Point]) -> list[Point]:
    """One larger held-out proxy: N_non-emb ~ ``extra_size_mult`` x the largest ladder size and
    D such that its compute is >= ``extra_compute_mult`` x the largest *fitted* compute (both in
    6 N_total D and in 6 N_non-emb D)."""
    held = {(p.size.name, p.tokens) for p in heldout_ladder_points(spec, points)}
    fitted = [p for p in points if p.role == "ladder" and (p.size.name, p.tokens) not in held]
    biggest = max(spec.sizes, key=lambda s: s.non_embedding_params)
    target = spec.extra_size_mult * biggest.non_embedding_params
    kw = dict(vocab=int(spec.data_meta["vocab_size"]), head_dim=biggest.head_dim, seq_len=spec.seq_len)
    s = size_at_depth(target, spec.depth, **kw) if spec.depth else size_for_params(target, **kw)
    c_tot = max(6.0 * p.size.total_params * p.tokens for p in fitted)
    c_ne = max(6.0 * p.size.non_embedding_params * p.tokens for p in fitted)
    need = max(spec.extra_compute_mult * c_tot / (6.0 * s.total_params),
               spec.extra_compute_mult * c_ne / (6.0 * s.non_embedding_params))
    steps = math.ceil(need / spec.tokens_per_step)
    tokens = steps * spec.tokens_per_step
    return [Point(s, tokens, steps, tokens / s.non_embedding_params, role="holdout_extra")]


# ------------------------------------------------------------------------------------------ options
def _read_hparams(hparams: str, data_vocab: int) -> HParams:
    """The tuned values, checked for what the ladder needs (μP; base width a multiple of the head size)."""
    if not Path(hparams).is_file():
        raise UserError(f"hparams file not found: {hparams}; make it with `scaleplan sweep export --study DIR`")
    hp = HParams.read(hparams)
    check_tuned_vocab(hp, data_vocab)
    if hp.parameterization != "mup":
        raise UserError(f"hparams file {hparams} has parameterization {hp.parameterization!r}; the ladder transfers "
                        "hyperparameters across widths with μP, so it needs `parameterization: mup` "
                        "(re-run the sweep with --param mup)")
    head_dim = hp.base_head_dim or DEFAULT_HEAD_DIM
    if hp.base_width % head_dim:
        raise UserError(f"hparams file {hparams}: base_width {hp.base_width!r} must be a positive multiple of "
                        f"base_head_dim {head_dim}; regenerate it with `scaleplan sweep export`")
    return hp


def _budget_option(schedule: str, tokens_per_param: str | None, flops: str | None,
                   cooldown_frac: float) -> str | None:
    """Checks schedule and budgets; returns the tokens-per-param list (the default when no budget is given)."""
    if schedule not in ("wsd", "cosine"):
        raise UserError(f"--schedule must be wsd or cosine, got {schedule!r}")
    if tokens_per_param is not None and flops is not None:
        raise UserError("give either --tokens-per-param or --flops, not both")
    if tokens_per_param is None and flops is None:
        tokens_per_param = ",".join(f"{m:g}" for m in DEFAULT_TOKENS_PER_PARAM)
    if not (0.0 < cooldown_frac < 1.0):
        raise UserError(f"--cooldown-frac must be in (0, 1), got {cooldown_frac}")
    return tokens_per_param


def _depth_option(depth: str | int | None, hp: HParams) -> int | None:
    if depth == "base":
        depth = hp.base_depth
    elif depth == "free":
        depth = None
    if depth is None:
        return None
    try:
        depth = int(depth)
    except (TypeError, ValueError):
        raise UserError(f"--depth must be base, free or a positive integer, got {depth!r}") from None
    if depth <= 0:
        raise UserError(f"--depth must be a positive integer, got {depth}")
    return depth


def load_spec(*, data: str, hparams: str, sizes: str | None = "auto", n_sizes: int = 5,
              n_range: tuple[float, float] = DEFAULT_N_RANGE, tokens_per_param: str | None = None,
              flops: str | None = None, schedule: str = "wsd", batch: int = 16, seq_len: int = 128,
              cooldown_frac: float = 0.2, seed: int = 0, holdout_extra: bool = False, min_steps: int = 1,
              max_epochs: float = MAX_EPOCHS, eval_batches: int = 16, depth: str | int | None = "base") -> LadderSpec:
    """Validate the options (UserError on bad input) and build the ladder spec.

    ``depth``: "base" (the hparams' base_depth; default), "free" (search_shapes picks it) or an int."""
    meta = TokenData.read_meta(data, need=("vocab_size", "train_tokens", "sha256"))
    vocab = int(meta["vocab_size"])
    hp = _read_hparams(hparams, vocab)
    tokens_per_param = _budget_option(schedule, tokens_per_param, flops, cooldown_frac)
    depth = _depth_option(depth, hp)
    size_list = parse_sizes(sizes, vocab=vocab, head_dim=hp.base_head_dim or DEFAULT_HEAD_DIM, seq_len=seq_len,
                            n_sizes=n_sizes, n_range=n_range, depth=depth)
    spec = LadderSpec(
        data=str(Path(data).resolve()), hparams=str(Path(hparams).resolve()), sizes=size_list,
        tokens_per_param=parse_number_list(tokens_per_param, "--tokens-per-param") if tokens_per_param else None,
        flops=parse_number_list(flops, "--flops") if flops else None, schedule=schedule, batch=batch,
        seq_len=seq_len, cooldown_frac=cooldown_frac, seed=seed, holdout_extra=holdout_extra,
        min_steps=min_steps, max_epochs=max_epochs, eval_batches=eval_batches, hp=hp, depth=depth,
        data_meta={k: meta[k] for k in ("vocab_size", "train_tokens", "val_tokens", "sha256") if k in meta})
    if seq_len + 1 > int(meta.get("val_tokens", 10 ** 12)):
        raise UserError(f"--seq-len {seq_len} is longer than the validation split; use a shorter one")
    return spec


def train_config(spec: LadderSpec, size: ModelShape, *, tokens: int | None = None, schedule: str | None = None,
                 eval_every: int | None = None, command: str = "") -> TrainConfig:
    """The TrainConfig of one ladder run (hparams transferred by the trainer's μP rules)."""
    return TrainConfig.from_hparams(
        spec.hp or HParams(), data=spec.data, d_model=size.d_model, n_layers=size.n_layers, head_dim=size.head_dim,
        batch=spec.batch, seq_len=spec.seq_len, schedule=schedule or spec.schedule, cooldown_frac=spec.cooldown_frac,
        seed=spec.seed, threads=1, tokens=tokens, eval_every=eval_every, eval_batches=spec.eval_batches,
        progress=False, extra={"command": command, "hparams_file": spec.hparams}).validate()
