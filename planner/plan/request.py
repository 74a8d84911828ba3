"""PlanRequest: every option of `scaleplan plan` in one dataclass, the only input of ``make_plan``.

Conventions: ``None`` means "let the plan choose" (each step documents its choice); a published
recipe (``preset``) fills the options it pins before the steps run (planner/plan/presets.py), and
options given explicitly win over the recipe's. Units: ``global_batch`` in sequences of
``seq_len`` tokens; ``tokens``, ``inference_tokens``, ``unique_tokens`` in tokens; ``lr`` and
``min_lr`` AdamW peak/final learning rates; ``mfu`` a fraction; ``price_per_gpu_hour`` US$.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

from planner.errors import UserError
from planner.limits import MAX_BATCH, MAX_LR, MAX_PRICE, MAX_SEQ_LEN, MAX_TOKENS, MAX_VOCAB, MIN_LR, MIN_PRICE
from planner.plan.budget import Budget
from planner.schema import show
from planner.recipes import Recipe
from planner.shape import ModelShape

#: Plausible ranges of the numeric options, ``name: (lo, hi, integer?, option)``; limits and their
#: sources in planner/limits.py (a price of 1e308 printed a cost of $inf, a vocab of 1e300 overflowed).
RANGES: dict[str, tuple[float, float, bool, str]] = {
    "price_per_gpu_hour": (MIN_PRICE, MAX_PRICE, False, "--price (US$ per GPU-hour)"),
    "lr": (MIN_LR, MAX_LR, False, "--lr (peak LR)"),
    "min_lr": (0.0, MAX_LR, False, "min_lr (final LR)"),
    "vocab": (1, MAX_VOCAB, True, "--vocab"),
    "seq_len": (1, MAX_SEQ_LEN, True, "--seq-len"),
    "global_batch": (1, MAX_BATCH, True, "--global-batch (sequences)"),
    "tokens": (1, MAX_TOKENS, True, "--tokens"),
}

#: Defaults of a budget plan (a preset brings its own): sequence length and vocabulary (tokens).
DEFAULT_SEQ_LEN = 4096
DEFAULT_GPU = "h100"  # H100 SXM (planner/hardware.py)
DEFAULT_VOCAB = 32000


@dataclass(kw_only=True)
class PlanRequest:
    """What to plan. A float ``budget`` is read as FLOPs."""

    # ---- what to spend (one of budget, target_loss, preset; see Budget.from_options)
    budget: Budget | float | None = None
    target_loss: float | None = None  # nats per token
    preset: str | None = None  # a registered published run (planner/plan/presets.py)
    tokens: int | None = None  # training tokens (default: budget / FLOPs per token, or the recipe's)
    # ---- the allocation
    law: Any = "besiroglu2024"  # planner.laws.DEFAULT_LAW; a preset name, a fit.json path, or a ScalingLaw
    loss_tolerance: float = 0.0025  # joint_choice.DEFAULT_LOSS_TOLERANCE; 0: no band, the shape nearest N*
    inference_tokens: float = 0.0  # tokens served over the model's life (Sardana et al. 2024)
    unique_tokens: float | None = None  # unique data available (Muennighoff et al. 2023)
    # ---- the model
    shape: ModelShape | None = None  # pin the shape (a preset's); None: search near N*
    seq_len: int | None = None  # default DEFAULT_SEQ_LEN
    vocab: int | None = None  # default DEFAULT_VOCAB (a pinned shape keeps its own)
    # ---- the training recipe
    hparams: Any = None  # HParams, a dict, a path to hparams.yaml, or None
    force_hparams: bool = False  # apply an hparams.yaml that fails the quality gate (planner/hparams_gate.py)
    horizon_correction: bool = True  # scale the hparams' LR by (T_target / T_proxy)^b (planner/horizon.py)
    recipe: Recipe | None = None  # published optimizer/schedule settings (set by a preset)
    global_batch: int | None = None  # default: DeepSeek's B_opt, rounded
    schedule: str | None = None  # cosine | wsd (default cosine)
    lr: float | None = None
    min_lr: float | None = None
    warmup_iters: int | None = None
    # ---- the hardware
    gpu: str | None = None  # default: the preset's, else DEFAULT_GPU
    n_gpus: int | None = None  # default: the budget's, else about 30 days
    gpus_per_node: int | None = None  # default: the GPU's NVLink domain
    tp: int | None = None
    pp: int | None = None
    cp: int | None = None
    micro_batch: int | None = None
    recompute: str | None = None  # none | selective | full
    sharding: str | None = None  # dist-opt | ddp | fsdp | fsdp-hybrid (default dist-opt)
    memory_margin: float | None = None  # fraction of HBM kept free (default planner.parallel.memory.DEFAULT_MEMORY_MARGIN)
    mfu: float | None = None
    price_per_gpu_hour: float | None = None
    # checkpoints and failures (planner/resilience.py; None: its sourced defaults)
    fs_bandwidth: float | None = None  # aggregate checkpoint write bandwidth, bytes/s
    node_mtbf_hours: float | None = None  # mean time between failures of one node
    keep_checkpoints: int | None = None
    disk_bytes: float | None = None  # checkpoint disk; warned when the retention needs more
    serve_on: str | None = None  # GPU[,dtype][,kv=dtype]: N must fit for inference (planner/serving.py)
    # ---- carried into the plan as is
    data: dict[str, Any] = field(default_factory=dict)  # launch placeholders (data path, tokenizer, ...)
    phases: list[dict[str, Any]] = field(default_factory=list)
    continue_from: Any = None  # continual pretraining: ContinueFrom or its mapping (planner/plan/continuation.py)
    data_sources: list[dict[str, Any]] = field(default_factory=list)  # mixture with unique tokens (data_mixture.py)
    command: str | None = None

    def __post_init__(self) -> None:
        if self.budget is not None and not isinstance(self.budget, Budget):
            self.budget = Budget.from_flops(self.budget)
        self.data = dict(self.data or {})
        self.phases = list(self.phases or [])
        self.data_sources = list(self.data_sources or [])
        check_ranges(self)

    @classmethod
    def of(cls, request: "PlanRequest | Budget | float | None" = None, **options: Any) -> "PlanRequest":
        """``request`` itself, or a request built from a budget and keyword options."""
        if isinstance(request, PlanRequest):
            if options:
                raise TypeError("give a PlanRequest or keyword options, not both")
            return request
        if request is not None:
            if "budget" in options:
                raise TypeError("the budget is given twice (positionally and as budget=)")
            options["budget"] = request
        return cls(**options)

    def replace(self, **changes: Any) -> "PlanRequest":
        return replace(self, **changes)

    def given(self) -> dict[str, Any]:
        """The options that are set (not None), by name."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


def check_ranges(req: PlanRequest) -> None:
    """UserError (one line, naming the option and its range) when a numeric option of ``req`` is not a
    finite number inside :data:`RANGES`; None means "let the plan choose" and passes."""
    for name, (lo, hi, integer, option) in RANGES.items():
        v = getattr(req, name)
        if v is None:
            continue
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and lo <= v <= hi
        if ok and integer and v != int(v):
            ok = False
        if not ok:
            rng = f"an integer between {lo:,} and {hi:,}" if integer else f"a number between {lo:g} and {hi:g}"
            raise UserError(f"{option} must be {rng} (planner/limits.py), got {show(v)}")
