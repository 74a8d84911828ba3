"""Parallel layout: the Layout dataclass and Megatron-LM's validity rules.

Conventions:

* ``n_gpus = tp * pp * cp * dp`` (Megatron-LM's rank grid; expert parallelism is out of scope).
* ``grad_accum`` is the number of micro-batches each data-parallel rank runs per optimizer step,
  Megatron's ``num_microbatches``; the global batch in sequences is
  ``micro_batch * dp * grad_accum`` (Megatron asserts ``GBS % (mbs * DP) == 0``).
* ``vpp`` is the number of virtual pipeline stages (model chunks) per pipeline rank; 1 means the
  plain 1F1B schedule (Megatron's ``--num-virtual-stages-per-pipeline-rank``).
* Sharding of training state over data parallelism:

  - ``zero_stage`` 0: every DP rank holds everything (plain DDP);
  - 1: fp32 master weights and Adam moments sharded (Megatron ``--use-distributed-optimizer``,
    which keeps the fp32 gradient buffer whole: "6 + 12/DP" bytes per parameter);
  - 2: ZeRO-2, gradients sharded as well;
  - 3: ZeRO-3, bf16 weights sharded as well (gathered layer by layer).
  - ``fsdp=True``: PyTorch FSDP2 full shard (torchtitan's default): fp32 sharded parameters, Adam
    and gradients; bf16 copies are all-gathered per layer. Implies ZeRO-3-like sharding.
  - ``shard_group``: shard over this many DP ranks only and replicate across the groups
    (FSDP "hybrid shard"/HSDP, e.g. 8 = within a node). ``None`` shards over all of DP.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from planner.errors import UserError
from planner.schema import check_record
from planner.shape import ModelShape

RECOMPUTE_CHOICES = ("none", "selective", "full")


@dataclass(frozen=True)
class Layout:
    """One way to place a model on GPUs (see the module docstring for every convention)."""

    tp: int = 1
    pp: int = 1
    cp: int = 1
    dp: int = 1
    vpp: int = 1
    micro_batch: int = 1
    grad_accum: int = 1
    sequence_parallel: bool = False
    recompute: str = "selective"  # none | selective | full
    zero_stage: int = 1  # 1 = Megatron --use-distributed-optimizer
    fsdp: bool = False
    shard_group: int | None = None

    def __post_init__(self) -> None:
        for attr in ("tp", "pp", "cp", "dp", "vpp", "micro_batch", "grad_accum"):
            v = getattr(self, attr)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise UserError(f"layout {attr} must be a positive integer, got {v!r}")
        if self.recompute not in RECOMPUTE_CHOICES:
            raise UserError(f"recompute must be one of {', '.join(RECOMPUTE_CHOICES)}, got {self.recompute!r}")
        if self.zero_stage not in (0, 1, 2, 3) or isinstance(self.zero_stage, bool):
            raise UserError(f"zero_stage must be 0, 1, 2 or 3, got {self.zero_stage!r}")
        if self.shard_group is not None and (
                isinstance(self.shard_group, bool) or not isinstance(self.shard_group, int) or self.shard_group <= 0):
            raise UserError(f"shard_group must be a positive integer or None, got {self.shard_group!r}")

    # ------------------------------------------------------------------ derived
    @property
    def n_gpus(self) -> int:
        return self.tp * self.pp * self.cp * self.dp

    @property
    def global_batch(self) -> int:
        """Sequences per optimizer step: micro_batch x dp x grad_accum."""
        return self.micro_batch * self.dp * self.grad_accum

    @property
    def num_microbatches(self) -> int:
        """Megatron's name for ``grad_accum``."""
        return self.grad_accum

    @property
    def distributed_optimizer(self) -> bool:
        """True when Megatron's ``--use-distributed-optimizer`` is the right flag (ZeRO-1, no FSDP)."""
        return self.zero_stage >= 1 and not self.fsdp

    @property
    def effective_zero_stage(self) -> int:
        return 3 if self.fsdp else self.zero_stage

    @property
    def shard_size(self) -> int:
        """Number of DP ranks that the sharded state is split over (1 without sharding)."""
        if self.effective_zero_stage == 0:
            return 1
        return min(self.shard_group or self.dp, self.dp)

    def replace(self, **changes: Any) -> "Layout":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.update(n_gpus=self.n_gpus, global_batch=self.global_batch,
                 distributed_optimizer=self.distributed_optimizer)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "layout", fix: str = "fix the value") -> "Layout":
        """Every field type- and range-checked (planner.schema); the derived n_gpus, global_batch and
        distributed_optimizer are recomputed (they must still be scalars)."""
        rules = {**dict.fromkeys(("tp", "pp", "cp", "dp", "vpp", "micro_batch", "grad_accum", "shard_group"),
                                 "positive"), "recompute": RECOMPUTE_CHOICES, "zero_stage": (0, 1, 2, 3)}
        return cls(**check_record(cls, d, where, fix=fix, rules=rules,
                                  ignored=("n_gpus", "global_batch", "distributed_optimizer")))

    def describe(self) -> str:
        parts = [f"TP{self.tp}", f"PP{self.pp}" + (f"x{self.vpp}v" if self.vpp > 1 else ""), f"CP{self.cp}",
                 f"DP{self.dp}", f"mbs {self.micro_batch}", f"accum {self.grad_accum}"]
        if self.sequence_parallel:
            parts.append("SP")
        parts.append(f"recompute {self.recompute}")
        if self.fsdp:
            parts.append("FSDP" + (f" hybrid/{self.shard_group}" if self.shard_group and self.shard_group < self.dp
                                   else ""))
        else:
            parts.append(f"ZeRO-{self.zero_stage}" + (" (distributed optimizer)" if self.zero_stage == 1 else ""))
        return ", ".join(parts)

    # ------------------------------------------------------------------ Megatron rules
    def validate(self, shape: ModelShape, n_gpus: int | None = None, global_batch: int | None = None,
                 seq_len: int | None = None) -> list[str]:
        """Every violated rule, as "what is wrong; what to do" messages (empty list = valid).

        Rules are Megatron-LM's (``validate_args``, ``TransformerConfig.__post_init__``, the
        tensor-parallel linears and the micro-batch calculator; notes §1c, numbered there):
        world % (TP·PP·CP) == 0 (1), heads % TP (4), kv-groups % TP or TP % kv-groups (4),
        layers % PP and (layers/PP) % VPP (5), GBS % (mbs·DP) (6), seq % (2·CP) (7),
        (seq/CP) % TP under SP (8), ffn and q/kv projection sizes % TP (9), SP needs TP > 1 (11).
        """
        s = shape.seq_len if seq_len is None else seq_len
        bad: list[str] = []
        tp, pp, cp, dp = self.tp, self.pp, self.cp, self.dp
        if n_gpus is not None:
            if n_gpus % (tp * pp * cp):
                bad.append(f"{n_gpus} GPUs are not divisible by TP·PP·CP = {tp * pp * cp}; "
                           "choose TP, PP, CP whose product divides the GPU count")
            elif n_gpus != self.n_gpus:
                bad.append(f"TP·PP·CP·DP = {self.n_gpus} but {n_gpus} GPUs were given; set DP = "
                           f"{n_gpus // (tp * pp * cp)}")
        if shape.n_heads % tp:
            bad.append(f"attention heads {shape.n_heads} not divisible by TP {tp}; use a TP that divides the heads")
        g = shape.n_kv_heads
        if g % tp and tp % g:
            bad.append(f"kv heads {g} and TP {tp}: one must divide the other (Megatron); change TP or kv heads")
        if shape.d_ffn % tp:
            bad.append(f"ffn size {shape.d_ffn} not divisible by TP {tp}; use a TP that divides it")
        if (shape.q_dim + 2 * shape.kv_dim) % tp or shape.q_dim % tp:
            bad.append(f"QKV projection size {shape.q_dim + 2 * shape.kv_dim} not divisible by TP {tp}; change TP")
        if shape.n_layers % pp:
            bad.append(f"{shape.n_layers} layers not divisible by PP {pp}; choose PP dividing the layers "
                       "(or give Megatron uneven first/last stages)")
        elif self.vpp > 1:
            if pp == 1:
                bad.append("virtual pipeline stages need PP > 1; set vpp = 1 or raise PP")
            elif (shape.n_layers // pp) % self.vpp:
                bad.append(f"layers per stage {shape.n_layers // pp} not divisible by vpp {self.vpp}; choose a "
                           "vpp dividing the layers per pipeline stage")
        if global_batch is not None:
            if global_batch % (self.micro_batch * dp):
                bad.append(f"global batch {global_batch} not divisible by micro-batch x DP = "
                           f"{self.micro_batch * dp}; change the global batch, micro-batch or DP")
            elif global_batch != self.global_batch:
                bad.append(f"micro-batch x DP x grad_accum = {self.global_batch} but the global batch is "
                           f"{global_batch}; set grad_accum = {global_batch // (self.micro_batch * dp)}")
        if cp > 1 and s % (2 * cp):
            bad.append(f"sequence length {s} not divisible by 2·CP = {2 * cp}; choose CP with seq % (2·CP) == 0")
        if self.sequence_parallel:
            if tp == 1:
                bad.append("sequence parallelism needs TP > 1 (Megatron turns it off at TP 1); disable it")
            elif (s // cp) % tp:
                bad.append(f"with sequence parallelism seq/CP = {s // cp} must be divisible by TP {tp}")
        if self.shard_group is not None and self.effective_zero_stage > 0 and dp % min(self.shard_group, dp):
            bad.append(f"shard group {self.shard_group} does not divide DP {dp}; use a divisor of DP (e.g. 8)")
        return bad

    def check(self, shape: ModelShape, n_gpus: int | None = None, global_batch: int | None = None,
              seq_len: int | None = None) -> None:
        """Raise UserError listing every violated rule (see :meth:`validate`)."""
        bad = self.validate(shape, n_gpus, global_batch, seq_len)
        if bad:
            raise UserError(f"invalid layout {self.describe()}: " + "; ".join(bad))


__all__ = ["Layout", "RECOMPUTE_CHOICES"]
