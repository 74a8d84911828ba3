"""The typed sections of a Plan, each written to and read from its plan.yaml section.

Conventions: every ``to_dict`` writes the keys plan.yaml has always had, in the same order (so a
plan's hash is stable); ``from_dict`` reads them back through planner.schema (plan.yaml is
untrusted data: every field's type, known keys only, ranges where physical, choices where a value
becomes a trainer flag) and raises UserError("plan section <name>.<field> ...; <fix>") otherwise.
Optional keys are written only when set. Units as in planner/plan/__init__.py: FLOPs, tokens,
sequences of ``seq_len`` tokens, bytes, GiB (2**30).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from planner.cost import TimeEstimate
from planner.errors import UserError
from planner.hardware import GIB
from planner.parallel.layout import Layout
from planner.parallel.memory import MemoryBreakdown
from planner.plan.continue_spec import check_continue_from
from planner.schema import check_record, check_rule, check_value
from planner.width_hparams import GROUPS, AttentionScale, GroupHParams, WidthHParams

if TYPE_CHECKING:  # only an annotation: the plan reader need not load numpy
    from planner.shape_search import ShapeCandidate

#: The fix every plan.yaml error names.
PLAN_FIX = "fix that value or regenerate the plan with `scaleplan plan`"
#: Choices of values that become trainer flags (planner/plan/training.py, placement.py; Megatron's
#: --lr-decay-style and --lr-wsd-decay-style choices, shared/notes/megatron-and-planning.md §1b).
SCHEDULES = ("cosine", "wsd")
#: Layout keywords of each sharding name (fsdp-hybrid also shards within a node: shard_group = GPUs
#: per node, set by the placement step); the names are the plan.yaml values `layout.sharding` may take.
SHARDING_LAYOUT = {"dist-opt": dict(zero_stage=1), "ddp": dict(zero_stage=0), "fsdp": dict(zero_stage=3, fsdp=True),
                   "fsdp-hybrid": dict(zero_stage=3, fsdp=True)}
SHARDINGS = tuple(SHARDING_LAYOUT)
WSD_DECAY_STYLES = ("exponential", "linear", "cosine", "minus_sqrt")
PHASE_DECAY_STYLES = ("constant", "linear", "cosine", "inverse-square-root")
#: How a phase follows the previous one (planner/plan/phases.py).
PHASE_MODES = ("continue", "rewarm", "reset")


def where(name: str) -> str:
    return f"plan section {name}"


def read_section(name: str, build, d: Any):
    """``build(d)``, with a missing key or a malformed value reported as a UserError on ``name``."""
    if not isinstance(d, dict):
        raise UserError(f"{where(name)} must be a mapping, got {type(d).__name__}; {PLAN_FIX}")
    try:
        return build(d)
    except UserError as e:
        msg = str(e)
        raise UserError(msg if msg.startswith(where(name)) else f"{where(name)}: {msg}") from None
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"{where(name)} is incomplete or malformed ({type(e).__name__}: {e}); {PLAN_FIX}") from None


def _checked(cls, d: dict[str, Any], name: str, rules: dict[str, Any] | None = None) -> dict[str, Any]:
    return check_record(cls, d, where(name), fix=PLAN_FIX, rules=rules)


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
    ci: dict[str, list[float | None]] = field(default_factory=dict)  # key -> [lo, hi] (bootstrap)
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
        rules = dict.fromkeys(("train_flops", "epochs", "N", "D", "C", "loss", "tokens_per_param"), "positive")
        return cls(**_checked(cls, d, "allocation", rules))


#: TrainingRecipe fields written only when set (the rest are always written, None as null).
_WRITTEN_WHEN_SET = ("wsd_decay_iters", "wsd_decay_style", "decoupled_lr", "decoupled_min_lr",
                     "embedding_init_std", "megatron_extra", "continue_from")


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
    betas: tuple[float, float]  # read from and written as a list
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
    continue_from: dict[str, Any] | None = None  # continual pretraining: ContinueSpec (planner/plan/continuation.py)

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
        out = cls(**_checked(cls, d, "training", _TRAINING_RULES))
        if out.schedule == "wsd" and out.wsd_decay_iters is None:
            raise UserError(f"{where('training')}.wsd_decay_iters must be set for schedule wsd; {PLAN_FIX}")
        if out.continue_from is not None:
            check_continue_from(out.continue_from, f"{where('training')}.continue_from", PLAN_FIX)
        for k, v in (out.megatron_extra or {}).items():
            if not k.replace("_", "").isalnum() or not k.isascii():
                raise UserError(f"{where('training')}.megatron_extra key {k!r} is not a Megatron flag name "
                                f"(letters, digits, _); {PLAN_FIX}")
        return out


_TRAINING_RULES: dict[str, Any] = {
    **dict.fromkeys(("global_batch", "seq_len", "train_iters", "lr", "lr_decay_iters", "eps", "init_std",
                     "flops_per_token", "deepseek_batch_tokens", "decoupled_lr", "embedding_init_std"), "positive"),
    **dict.fromkeys(("min_lr", "warmup_iters", "wsd_decay_iters", "weight_decay", "clip_grad", "decoupled_min_lr"),
                    "nonneg"),
    "betas": "open_fraction", "schedule": SCHEDULES, "wsd_decay_style": WSD_DECAY_STYLES,
    "precision": ("bf16", "fp16", "fp32"), "optimizer": ("adamw",)}


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
        layout["recompute"] = "none" if layout.get("recompute") is None else layout["recompute"]
        rules = {**dict.fromkeys(("gpus_per_node", "n_nodes", "n_gpus"), "positive"), "sharding": SHARDINGS}
        kw = check_record(cls, {k: d[k] for k in placed if k in d}, where("layout"), fix=PLAN_FIX, rules=rules,
                          fields=placed)
        return cls(layout=Layout.from_dict(layout, where("layout"), PLAN_FIX), **kw)


@dataclass(frozen=True)
class MemoryFit:
    """Peak memory per GPU (``breakdown``) against the GPU's capacity less a ``margin`` kept free
    (``fits``: total <= capacity x (1 - margin))."""

    breakdown: MemoryBreakdown
    capacity_gib: float
    fits: bool
    margin: float = 0.0

    @property
    def capacity_bytes(self) -> float:
        return self.capacity_gib * GIB

    def to_dict(self) -> dict[str, Any]:
        return {**self.breakdown.to_dict(), "capacity_gib": self.capacity_gib, "fits": self.fits, "margin": self.margin}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "MemoryFit":
        own = ("capacity_gib", "fits", "margin")
        kw = check_record(cls, {k: d[k] for k in own if k in d}, where("memory"), fix=PLAN_FIX,
                          rules={"capacity_gib": "positive", "margin": "nonneg"}, fields=own)
        rest = {k: v for k, v in d.items() if k not in own}
        return cls(MemoryBreakdown.from_dict(rest, where("memory"), PLAN_FIX), **kw)


@dataclass(frozen=True)
class TimeCost:
    """Wall-clock time and price of the run; ``price_is_placeholder`` when no price was given."""

    estimate: TimeEstimate
    price_is_placeholder: bool

    def to_dict(self) -> dict[str, Any]:
        return {**self.estimate.to_dict(), "price_is_placeholder": self.price_is_placeholder}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TimeCost":
        kw = check_record(cls, {k: d[k] for k in ("price_is_placeholder",) if k in d}, where("time_cost"),
                          fix=PLAN_FIX, fields=("price_is_placeholder",))
        rest = {k: v for k, v in d.items() if k != "price_is_placeholder"}
        return cls(TimeEstimate.from_dict(rest, where("time_cost"), PLAN_FIX), **kw)


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
    def from_dict(cls, d: dict[str, Any], name: str = "candidates") -> "ShapeOption":
        rules = dict.fromkeys(("n_layers", "d_model", "d_ffn", "n_heads", "n_kv_heads", "total_params"), "positive")
        return cls(**_checked(cls, d, name, rules))


@dataclass(frozen=True, kw_only=True)
class LayoutOption:
    """One of the layouts the search ranked for the chosen shape (the plan's layout first)."""

    layout: str  # Layout.describe()
    memory_gib: float
    mfu: float  # estimated (planner/parallel/throughput.py)
    days: float  # the run's model FLOPs at that MFU
    why: str  # the modelled losses

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], name: str = "layout_options") -> "LayoutOption":
        rules = {"memory_gib": "positive", "mfu": "fraction", "days": "positive"}
        return cls(**_checked(cls, d, name, rules))


@dataclass(frozen=True)
class PhaseSpec:
    """The schema of one ``phases`` item; planner/plan/phases.py resolves it against the plan (lengths,
    defaults, the LR segment) and plan.yaml keeps the mapping as given. Length: ``tokens`` or
    ``train_iters`` (steps at ``global_batch``, default the plan's); the last phase may give neither
    and takes the rest. ``mode``: continue | rewarm | reset (phases.py docstring). LR segment: ``lr``
    -> ``min_lr`` after ``warmup_iters``, decaying over ``decay_iters`` steps (may exceed the phase:
    it then stops mid-decay) with ``decay_style``. ``data``: the phase's mixture (:class:`PhaseData`)."""

    name: str | None = None
    tokens: int | None = None
    train_iters: int | None = None
    global_batch: int | None = None
    mode: str | None = None
    lr: float | None = None
    min_lr: float | None = None
    warmup_iters: int | None = None
    decay_iters: int | None = None
    decay_style: str | None = None
    data: list[dict[str, object]] | None = None


@dataclass(frozen=True)
class PhaseData:
    """One source of a phase's data mixture: a Megatron data prefix and its (relative) weight;
    ``unique_tokens`` (optional): the distinct tokens the source holds, for epochs and the
    repetition penalty (planner/plan/data_mixture.py)."""

    prefix: str
    weight: float
    unique_tokens: float | None = None


@dataclass(frozen=True)
class LaunchData:
    """The schema of the ``data`` section: launch placeholders the exporters write (quoted for their
    language; planner/export/common.py). ``data_path`` may be a list of Megatron weights and prefixes."""

    data_path: str | list[str | float] = ""
    tokenizer_model: str = ""
    checkpoint_dir: str = ""
    cache_dir: str = ""
    dataset: str = ""  # torchtitan: a dataset name it knows


def check_phases(phases: Any) -> list[dict[str, Any]]:
    """The ``phases`` section (a list of :class:`PhaseSpec` mappings, each ``data`` a list of
    :class:`PhaseData`), checked field by field; lengths and modes against the plan: phases.py."""
    check_value(phases, list[dict[str, object]], where("phases"), PLAN_FIX)
    rules = {"tokens": "positive", "train_iters": "positive", "global_batch": "positive", "mode": PHASE_MODES,
             "lr": "positive", "min_lr": "nonneg", "warmup_iters": "nonneg", "decay_iters": "nonneg",
             "decay_style": PHASE_DECAY_STYLES}
    for i, p in enumerate(phases):
        w = f"{where('phases')}[{i}]"
        check_record(PhaseSpec, p, w, fix=PLAN_FIX, rules=rules)
        name = p.get("name")
        if name is not None and not (name and len(name) <= 64 and all(c.isalnum() or c in "-_." for c in name)
                                     and name[0].isalnum()):
            raise UserError(f"{w}.name must be letters, digits, - _ . (it names launch files and folders), "
                            f"got {name!r:.80}; {PLAN_FIX}")
        for j, src in enumerate(p.get("data") or []):
            check_record(PhaseData, src, f"{w}.data[{j}]", fix=PLAN_FIX,
                         rules={"weight": "positive", "unique_tokens": "positive"})
    return list(phases)


def check_data(data: Any) -> dict[str, Any]:
    """The ``data`` section (:class:`LaunchData` keys), checked."""
    return dict(check_record(LaunchData, data, where("data"), fix=PLAN_FIX))


def read_width_hparams(d: dict[str, Any]) -> WidthHParams:
    """The ``hparams`` section: every group's values and the scalars checked, then ``WidthHParams.from_dict``."""
    w = where("hparams")
    nested = ("embedding", "hidden", "readout", "norms", "attention")
    scalars = tuple(f.name for f in dataclasses.fields(WidthHParams) if f.name not in nested)
    check_record(WidthHParams, {k: v for k, v in d.items() if k not in ("groups", "attention")}, w, fix=PLAN_FIX,
                 fields=scalars, rules={"parameterization": ("mup", "sp"), "m_d": "positive", "d_model": "positive",
                                        "base_width": "positive", "betas": "open_fraction", "eps": "positive",
                                        "warmup_frac": "nonneg"})
    groups = d.get("groups")
    check_value(groups, dict[str, dict[str, object]], f"{w}.groups", PLAN_FIX)
    if sorted(groups) != sorted(GROUPS):
        raise UserError(f"{w}.groups must have exactly {list(GROUPS)}, got {sorted(map(str, groups))}; {PLAN_FIX}")
    for name in GROUPS:
        check_record(GroupHParams, groups[name], f"{w}.groups.{name}", fix=PLAN_FIX,
                     rules={"lr": "positive", "init_std": "nonneg", "weight_decay": "nonneg"})
    check_record(AttentionScale, d.get("attention"), f"{w}.attention", fix=PLAN_FIX,
                 rules={"scale": "positive", "rule": ("attn_mult/d_head", "1/sqrt(d_head)")})
    return WidthHParams.from_dict(d)


def check_scalar(value: Any, tp: Any, name: str, rule: Any = None) -> Any:
    """A top-level plan value (``tokens``, ``preset``, ``warnings``) checked against ``tp`` and ``rule``."""
    check_value(value, tp, where(name), PLAN_FIX)
    if rule is not None:
        check_rule(value, rule, where(name), PLAN_FIX)
    return value
