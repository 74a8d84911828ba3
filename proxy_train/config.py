"""TrainConfig: every option of ``scaleplan train`` in one dataclass (plain JSON round trip), the
proxy's shape rule (:func:`proxy_shape`) and the tuned values of an hparams.yaml
(:meth:`TrainConfig.from_hparams`, read with ``planner.hparams.HParams.read``).

Shape conventions: fixed head size (``head_dim``, default 32; heads = d_model / head_dim) or fixed
head count (``n_heads``); SwiGLU width ``planner.shape.swiglu_ffn_dim``; untied embeddings at the
data's padded vocab. Counts and FLOPs come from the resulting ``planner.shape.ModelShape``.

Width conventions (μP, see docs/CONTRACTS.md and /work/shared/notes/mup-and-sweeps.md §0):
``m_d = d_model / base_width``; hidden matrices get init std ``init_std / sqrt(m_d)`` and AdamW LR
``lr / m_d``; embedding, readout and norm gains keep ``lr`` and (embedding/readout) ``init_std``;
logits = ``alpha_out * (x W_out^T) / m_d``; attention logits = ``attn_mult * q.k / head_dim``.
Under SP the same numbers are used without any width factor and attention uses
``attn_mult * q.k / sqrt(head_dim)``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planner.errors import UserError
from planner.hparams import HParams
from planner.shape import ModelShape, swiglu_ffn_dim
from proxy_train.schedules import COOLDOWN_SHAPES, SCHEDULES

DEPTH_SCALINGS = ("none", "depth-mup", "completep")
DEFAULT_HEAD_DIM = 32
# HParams fields that are TrainConfig fields of the same name (hparams.yaml, docs/CONTRACTS.md);
# HParams.base_head_dim becomes the fixed head size ``head_dim``.
_HPARAMS_FIELDS = ("parameterization", "base_width", "base_depth", "lr", "init_std", "alpha_in", "alpha_out",
                   "attn_mult", "warmup_frac", "weight_decay", "wd_rule", "readout_zero_init", "query_zero_init",
                   "betas", "eps")
# Names these fields had before the hparams.yaml names were adopted (run.json written by scaleplan
# 0.1.0 carries them): read as the new names, and hashed under the old ones so that runs made before
# the rename keep their config hash and resume instead of rerunning.
_LEGACY_NAMES = {"param": "parameterization", "in_mult": "alpha_in", "out_mult": "alpha_out", "wd": "weight_decay"}
# Fields that change how fast a run goes, not what it computes (left out of the config hash).
_RUNTIME_FIELDS = ("threads", "device", "compile", "eval_every", "ckpt_every", "progress")


@dataclass
class TrainConfig:
    data: str = ""
    d_model: int = 128
    n_layers: int = 2
    n_heads: int | None = None     # fixed head count (head_dim = d_model / n_heads) ...
    head_dim: int | None = None    # ... or fixed head size (n_heads = d_model / head_dim); default 32
    parameterization: str = "mup"  # mup | sp
    base_width: int = 128          # d_model at which the base hyperparameters hold (m_d = 1)
    base_depth: int | None = None  # for depth scaling; default n_layers
    lr: float = 1e-2
    init_std: float = 0.02
    alpha_out: float = 1.0
    alpha_in: float = 1.0
    attn_mult: float = 1.0
    weight_decay: float = 0.0
    wd_rule: str = "mup"           # mup (MuAdamW: hidden wd * m_d) | unscaled (own param groups)
    readout_zero_init: bool | None = None  # default: True under muP, False under SP
    query_zero_init: bool | None = None    # default: True under muP, False under SP
    depth_scaling: str = "none"    # none | depth-mup | completep
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    tokens: int | None = None
    steps: int | None = None
    batch: int = 16
    seq_len: int = 128
    schedule: str = "cosine"
    warmup_frac: float = 0.05
    warmup_steps: int | None = None  # overrides warmup_frac when given (WSD branches use it)
    cooldown_frac: float = 0.2
    cooldown_shape: str = "1-sqrt"
    min_lr_frac: float = 0.1
    clip: float = 1.0
    seed: int = 0
    threads: int = 1
    device: str = "auto"
    compile: bool = False
    eval_every: int | None = None  # default: about 10 evaluations per run
    eval_batches: int = 8
    ckpt_every: int | None = None  # default: at every evaluation
    progress: bool = True
    extra: dict = field(default_factory=dict)  # free-form provenance (e.g. the hparams source)

    # ------------------------------------------------------------------ derived values
    @property
    def tokens_per_step(self) -> int:
        return self.batch * self.seq_len

    @property
    def total_steps(self) -> int:
        if self.steps is not None:
            return int(self.steps)
        return max(1, math.ceil(int(self.tokens) / self.tokens_per_step))

    @property
    def resolved_warmup_steps(self) -> int:
        if self.warmup_steps is not None:
            return int(self.warmup_steps)
        return int(round(self.warmup_frac * self.total_steps))

    @property
    def zero_readout(self) -> bool:
        return (self.parameterization == "mup") if self.readout_zero_init is None else bool(self.readout_zero_init)

    @property
    def zero_query(self) -> bool:
        return (self.parameterization == "mup") if self.query_zero_init is None else bool(self.query_zero_init)

    # ------------------------------------------------------------------ checks
    def validate(self) -> "TrainConfig":
        if not self.data:
            raise UserError("no data folder given; pass --data DIR (made by `scaleplan data prepare`)")
        for name in ("d_model", "n_layers", "base_width", "batch", "seq_len", "threads", "eval_batches"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise UserError(f"{name} must be a positive integer, got {v!r}")
        if self.parameterization not in ("mup", "sp"):
            raise UserError(f"parameterization must be mup or sp, got {self.parameterization!r}")
        if self.n_heads is not None and self.head_dim is not None:
            raise UserError("give either --heads or --head-dim, not both (the other follows from d_model)")
        if self.n_heads is not None:
            if self.n_heads <= 0 or self.d_model % self.n_heads:
                raise UserError(f"d_model {self.d_model} is not divisible by heads {self.n_heads}; "
                                "choose heads that divide d_model, or use --head-dim")
            hd = self.d_model // self.n_heads
        else:
            hd = self.resolved_head_dim
            if hd <= 0 or self.d_model % hd:
                raise UserError(f"d_model {self.d_model} is not divisible by head_dim {hd}; "
                                "choose a width that is a multiple of the head size, or use --heads")
        if hd % 2:
            raise UserError(f"head_dim {hd} is odd; RoPE needs an even head size")
        if self.tokens is None and self.steps is None:
            raise UserError("no training length; pass --tokens T or --steps S")
        if self.tokens is not None and self.steps is not None:
            raise UserError("give either --tokens or --steps, not both")
        for name in ("tokens", "steps"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v <= 0):
                raise UserError(f"{name} must be a positive integer, got {v!r}")
        for name in ("lr", "init_std", "alpha_out", "alpha_in", "attn_mult", "eps"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise UserError(f"{name} must be a positive finite number, got {v!r}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise UserError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.wd_rule not in ("mup", "unscaled"):
            raise UserError(f"wd_rule must be mup or unscaled, got {self.wd_rule!r}")
        if self.depth_scaling not in DEPTH_SCALINGS:
            raise UserError(f"depth_scaling must be one of {DEPTH_SCALINGS}, got {self.depth_scaling!r}")
        if self.schedule not in SCHEDULES:
            raise UserError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.cooldown_shape not in COOLDOWN_SHAPES:
            raise UserError(f"cooldown_shape must be one of {COOLDOWN_SHAPES}, got {self.cooldown_shape!r}")
        for name in ("warmup_frac", "cooldown_frac", "min_lr_frac"):
            v = getattr(self, name)
            if not (0.0 <= v <= 1.0):
                raise UserError(f"{name} must be between 0 and 1, got {v!r}")
        if self.warmup_steps is not None and self.warmup_steps < 0:
            raise UserError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if not (self.clip >= 0):
            raise UserError(f"clip must be >= 0 (0 turns clipping off), got {self.clip!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise UserError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.base_depth is not None and self.base_depth <= 0:
            raise UserError(f"base_depth must be positive, got {self.base_depth}")
        self._check_limits()
        return self

    def _check_limits(self) -> None:
        """Values beyond proxy_train.limits (with their sources there): finite and positive, yet nonsense."""
        from proxy_train import limits as L

        caps = {"d_model": L.MAX_WIDTH, "base_width": L.MAX_WIDTH, "n_layers": L.MAX_LAYERS,
                "base_depth": L.MAX_LAYERS, "n_heads": L.MAX_WIDTH, "head_dim": L.MAX_WIDTH,
                "batch": L.MAX_BATCH, "steps": L.MAX_STEPS, "tokens": L.MAX_TOKENS,  # seq_len: data, memory checks
                "eval_every": L.MAX_STEPS, "lr": L.MAX_LR, "init_std": L.MAX_STD, "alpha_in": L.MAX_MULT,
                "alpha_out": L.MAX_MULT, "attn_mult": L.MAX_MULT, "weight_decay": L.MAX_WD, "clip": 1e30,
                "eps": 1.0}
        for name, cap in caps.items():
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (int, float)) and not isinstance(v, bool) and v <= cap):
                raise UserError(f"{name} {v!r} is beyond the plausible limit {cap:g} (proxy_train/limits.py); "
                                "choose a smaller value")
        if not (isinstance(self.seed, int) and not isinstance(self.seed, bool) and 0 <= self.seed <= L.MAX_SEED):
            raise UserError(f"seed must be an integer 0..{L.MAX_SEED}, got {self.seed!r}")
        betas = self.betas
        if (not isinstance(betas, (list, tuple)) or len(betas) != 2
                or not all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1 for b in betas)):
            raise UserError(f"betas must be two numbers in [0, 1), got {betas!r}")

    @property
    def resolved_head_dim(self) -> int:
        return head_layout(self.d_model, n_heads=self.n_heads, head_dim=self.head_dim)[1]

    @property
    def resolved_n_heads(self) -> int:
        return head_layout(self.d_model, n_heads=self.n_heads, head_dim=self.head_dim)[0]

    def model_shape(self, vocab_size: int) -> ModelShape:
        """The proxy's architecture and exact counts on data of (padded) vocab ``vocab_size``."""
        return proxy_shape(vocab_size, self.d_model, self.n_layers, n_heads=self.n_heads, head_dim=self.head_dim,
                           seq_len=self.seq_len)

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_hparams(cls, hp: HParams, *, data_vocab: int | None = None, **fields: Any) -> "TrainConfig":
        """A config with the tuned base values of ``hp`` (hparams.yaml); ``fields`` win over them.

        Every HParams field of the same name is taken (``None`` leaves this class's default);
        ``base_head_dim`` becomes ``head_dim`` unless ``fields`` fix ``n_heads``. UserError when
        ``data_vocab`` (the data folder's padded vocab) differs from the vocab the values were tuned
        on: multipliers tuned on one vocab do not carry over.
        """
        check_tuned_vocab(hp, data_vocab)
        tuned = hparams_fields(hp)
        if fields.get("n_heads") is not None:
            tuned.pop("head_dim", None)
        return cls(**{**tuned, **fields})

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        d = {_LEGACY_NAMES.get(k, k): v for k, v in d.items()}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise UserError(f"unknown training options {sorted(unknown)}; known: {sorted(known)}")
        if "betas" in d and d["betas"] is not None:
            d["betas"] = tuple(float(b) for b in d["betas"])
        return cls(**d)

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def config_hash(self, data_sha256: str = "") -> str:
        """Hash of everything that changes the result (not threads/device/eval cadence)."""
        legacy = {new: old for old, new in _LEGACY_NAMES.items()}
        d = {legacy.get(k, k): v for k, v in self.to_dict().items() if k not in _RUNTIME_FIELDS}
        d["data"] = data_sha256 or str(Path(self.data))
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def check_tuned_vocab(hp: HParams, data_vocab: int | None) -> None:
    """UserError when the data's padded vocab differs from the one ``hp`` was tuned on (sweep
    export records it): multipliers tuned on one vocab do not carry over."""
    if hp.vocab_size is not None and data_vocab is not None and int(hp.vocab_size) != int(data_vocab):
        raise UserError(f"the hparams were tuned with vocab {hp.vocab_size} but the data has vocab {data_vocab}; "
                        "use the data folder the sweep used or re-run the sweep on this data")


def hparams_fields(hp: HParams) -> dict[str, Any]:
    """The TrainConfig fields an HParams sets (fields it leaves ``None`` are not included)."""
    fields = {name: getattr(hp, name) for name in _HPARAMS_FIELDS if getattr(hp, name) is not None}
    if hp.base_head_dim:
        fields["head_dim"] = int(hp.base_head_dim)
    return fields


def head_layout(d_model: int, *, n_heads: int | None = None, head_dim: int | None = None) -> tuple[int, int]:
    """(n_heads, head_dim) under the fixed-heads rule (``n_heads`` given) or the fixed-head-size rule
    (``head_dim``, default ``DEFAULT_HEAD_DIM``)."""
    if n_heads is not None:
        return n_heads, d_model // n_heads
    head_dim = DEFAULT_HEAD_DIM if head_dim is None else head_dim
    return d_model // head_dim, head_dim


def proxy_shape(vocab_size: int, d_model: int, n_layers: int, *, n_heads: int | None = None,
                head_dim: int | None = None, seq_len: int, name: str | None = None) -> ModelShape:
    """The proxy model's shape: heads by :func:`head_layout`, SwiGLU width by
    :func:`planner.shape.swiglu_ffn_dim`, untied embeddings at the data's padded vocab, no GQA.

    The one place that says which ModelShape the trainer builds (``proxy_train.model`` is built
    from it, the ladder sizes its points with it); needs no torch."""
    n_heads, head_dim = head_layout(d_model, n_heads=n_heads, head_dim=head_dim)
    return ModelShape(n_layers=n_layers, d_model=d_model, d_ffn=swiglu_ffn_dim(d_model), n_heads=n_heads,
                      head_dim=head_dim, vocab_size=vocab_size, seq_len=seq_len, tied=False, name=name)
