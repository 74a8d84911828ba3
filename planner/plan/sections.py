"""The typed sections of a Plan, each written to and read from its plan.yaml section.

Conventions: every ``to_dict`` writes the keys plan.yaml has always had, in the same order (so a
plan's hash is stable); ``from_dict`` reads them back and raises UserError("...; regenerate the
plan") when a section is incomplete. Optional keys are written only when set. Units as in
planner/plan/__init__.py: FLOPs, tokens, sequences of ``seq_len`` tokens, bytes, GiB (2**30).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from planner.cost import TimeEstimate
from planner.errors import UserError
from planner.hardware import GIB
from planner.parallel.layout import Layout
from planner.parallel.memory import MemoryBreakdown
from planner.shape_search import ShapeCandidate


def read_section(name: str, build, d: Any):
    """``build(d)``, with a missing key or a malformed value reported as a UserError on ``name``."""
    if not isinstance(d, dict):
        raise UserError(f"plan section {name} must be a mapping, got {type(d).__name__}; regenerate the plan")
    try:
        return build(d)
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"plan section {name} is incomplete or malformed ({type(e).__name__}: {e}); "
                        "regenerate it with `scaleplan plan`") from None


def _known(cls, d: dict[str, Any], ignored: tuple[str, ...] = ()) -> dict[str, Any]:
    """The keys of ``d`` that are fields of ``cls``; unknown keys (beyond ``ignored``) are an error."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names - set(ignored))
    if unknown:
        raise ValueError(f"unknown keys {unknown}")
    return {k: v for k, v in d.items() if k in names}


@dataclass(frozen=True, kw_only=True)
class PlanAllocation:
    """N*, D* from the scaling law and how they were reached; for a preset, the recipe's source."""

    law: str | None  # None: a published recipe, no law consulted
    mode: str
    law_source: str | None = None
    flops_convention: str | None = None
    train_flops: float | None = None  # inference-aware: the training compute chosen
    epochs: float | None = None  # data-constrained: passes over the unique data
    N: float | None = None  # total parameters
    D: float | None = None  # tokens
    C: float | None = None  # FLOPs, 6ND
    loss: float | None = None  # nats per token
    tokens_per_param: float | None = None
    ci: dict[str, Any] = field(default_factory=dict)  # key -> [lo, hi] (bootstrap)
    source: str | None = None  # preset: where the recipe was published

    @property
    def is_preset(self) -> bool:
        return self.law is None

    def to_dict(self) -> dict[str, Any]:
        if self.is_preset:
            return {"law": None, "mode": self.mode, "N": self.N, "D": self.D, "source": self.source}
        d: dict[str, Any] = {"law": self.law, "law_source": self.law_source, "mode": self.mode,
                             "flops_convention": self.flops_convention}
        if self.train_flops is not None:
            d["train_flops"] = self.train_flops
        if self.epochs is not None:
            d["epochs"] = self.epochs
        d.update(N=self.N, D=self.D, C=self.C, loss=self.loss, tokens_per_param=self.tokens_per_param,
                 ci=dict(self.ci))
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PlanAllocation":
        return cls(**_known(cls, d))


#: TrainingRecipe fields written only when set (the rest are always written, None as null).
_WRITTEN_WHEN_SET = ("wsd_decay_iters", "wsd_decay_style", "decoupled_lr", "decoupled_min_lr",
                     "embedding_init_std", "megatron_extra")


@dataclass(frozen=True, kw_only=True)
class TrainingRecipe:
    """Batch, steps, LR schedule and optimizer of the run (fields in plan.yaml order).

    ``lr`` is Megatron's ``--lr``: under μP the hidden-matrix LR, with the embedding/readout LR in
    ``decoupled_lr``. ``lr_decay_iters`` counts from step 0 including warmup (Megatron).
    """

    global_batch: int  # sequences per optimizer step
    seq_len: int
    train_iters: int
    lr: float
    min_lr: float
    lr_source: str
    schedule: str  # cosine | wsd
    warmup_iters: int
    lr_decay_iters: int
    wsd_decay_iters: int | None = None
    wsd_decay_style: str | None = None
    betas: list[float]
    eps: float
    weight_decay: float
    clip_grad: float
    init_std: float
    precision: str = "bf16"
    optimizer: str = "adamw"
    flops_per_token: float  # Megatron's count for the planned shape
    flops_convention: str = "megatron"
    deepseek_batch_tokens: float | None = None  # DeepSeek LLM's B_opt (budget plans only)
    decoupled_lr: float | None = None  # μP: embedding + output layer LR
    decoupled_min_lr: float | None = None
    embedding_init_std: float | None = None
    megatron_extra: dict[str, Any] | None = None  # a published run's non-planning Megatron settings

    @property
    def batch_tokens(self) -> int:
        return self.global_batch * self.seq_len

    @property
    def model_flops(self) -> float:
        """Model FLOPs of the whole run: steps x batch tokens x FLOPs per token."""
        return self.train_iters * self.batch_tokens * self.flops_per_token

    @property
    def min_lr_factor(self) -> float:
        return self.min_lr / self.lr

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in _WRITTEN_WHEN_SET and not value:
                continue
            out[f.name] = list(value) if f.name == "betas" else value
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainingRecipe":
        return cls(**_known(cls, d))


@dataclass(frozen=True)
class Placement:
    """The parallel layout plus where it runs: GPU type, GPUs per node, nodes, sharding scheme.

    ``n_gpus`` is the GPU count the plan was made for (equal to ``layout.n_gpus`` in a plan that
    ``make_plan`` wrote; an edited plan may differ, and :meth:`validate` then says so).
    """

    layout: Layout
    gpu: str
    gpus_per_node: int
    n_nodes: int
    sharding: str  # dist-opt | ddp | fsdp | fsdp-hybrid
    n_gpus: int

    def validate(self, shape, global_batch: int, seq_len: int) -> list[str]:
        """Megatron-LM's rules for this layout on ``n_gpus`` GPUs (``Layout.validate``)."""
        return self.layout.validate(shape, self.n_gpus, global_batch, seq_len)

    def to_dict(self) -> dict[str, Any]:
        d = self.layout.to_dict()
        d.update(gpu=self.gpu, gpus_per_node=self.gpus_per_node, n_nodes=self.n_nodes, sharding=self.sharding,
                 recompute=None if self.layout.recompute == "none" else self.layout.recompute, n_gpus=self.n_gpus)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Placement":
        placed = ("gpu", "gpus_per_node", "n_nodes", "sharding", "n_gpus")
        layout = {k: v for k, v in d.items() if k not in placed}
        layout["recompute"] = layout.get("recompute") or "none"
        return cls(layout=Layout.from_dict(layout), **{k: d[k] for k in placed})


@dataclass(frozen=True)
class MemoryFit:
    """Peak memory per GPU (``breakdown``) against the GPU's capacity."""

    breakdown: MemoryBreakdown
    capacity_gib: float
    fits: bool

    @property
    def capacity_bytes(self) -> float:
        return self.capacity_gib * GIB

    def to_dict(self) -> dict[str, Any]:
        return {**self.breakdown.to_dict(), "capacity_gib": self.capacity_gib, "fits": self.fits}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "MemoryFit":
        rest = {k: v for k, v in d.items() if k not in ("capacity_gib", "fits")}
        return cls(MemoryBreakdown.from_dict(rest), d["capacity_gib"], d["fits"])


@dataclass(frozen=True)
class TimeCost:
    """Wall-clock time and price of the run; ``price_is_placeholder`` when no price was given."""

    estimate: TimeEstimate
    price_is_placeholder: bool

    def to_dict(self) -> dict[str, Any]:
        return {**self.estimate.to_dict(), "price_is_placeholder": self.price_is_placeholder}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TimeCost":
        rest = {k: v for k, v in d.items() if k != "price_is_placeholder"}
        return cls(TimeEstimate.from_dict(rest), d["price_is_placeholder"])


@dataclass(frozen=True)
class ShapeOption:
    """One shape the search proposed (the chosen one first in a plan), with its rule checks."""

    n_layers: int
    d_model: int
    d_ffn: int
    n_heads: int
    n_kv_heads: int
    total_params: int
    rel_error: float  # params / N* - 1
    score: float  # lower is better (planner/shape_search.py)
    rules: dict[str, bool]
    why: str

    @classmethod
    def from_candidate(cls, c: ShapeCandidate) -> "ShapeOption":
        s = c.shape
        return cls(n_layers=s.n_layers, d_model=s.d_model, d_ffn=s.d_ffn, n_heads=s.n_heads,
                   n_kv_heads=s.n_kv_heads, total_params=s.total_params, rel_error=c.rel_error, score=c.score,
                   rules=dict(c.rules), why=c.why)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ShapeOption":
        return cls(**d)
