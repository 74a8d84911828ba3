"""Parallel layout: the Layout dataclass, Megatron's validity rules, and the layout search.

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
import math
from dataclasses import dataclass, field
from typing import Any

from planner.errors import UserError
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
    def from_dict(cls, d: dict[str, Any]) -> "Layout":
        known = {f.name for f in dataclasses.fields(cls)}
        derived = {"n_gpus", "global_batch", "distributed_optimizer"}
        unknown = set(d) - known - derived
        if unknown:
            raise UserError(f"unknown layout fields {sorted(unknown)}; known fields: {sorted(known)}")
        return cls(**{k: v for k, v in d.items() if k in known})

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


@dataclass
class LayoutCandidate:
    """A valid layout with its memory per GPU and estimated speed (see :func:`search_layouts`)."""

    layout: Layout
    memory: Any  # planner.memory.MemoryBreakdown
    mfu: float  # estimated model FLOPs utilisation
    tokens_per_second: float  # whole job
    step_seconds: float  # one optimizer step
    factors: dict[str, float] = field(default_factory=dict)  # multiplicative efficiency factors
    why: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"layout": self.layout.to_dict(), "memory": self.memory.to_dict(), "mfu": self.mfu,
                "tokens_per_second": self.tokens_per_second, "step_seconds": self.step_seconds,
                "factors": dict(self.factors), "why": self.why}


@dataclass(frozen=True)
class Rejection:
    """A layout the search dropped, and why (reasons are shown to users as warnings)."""

    layout: Layout
    reason: str


class LayoutResults(list):
    """``list[LayoutCandidate]`` best first, with ``.rejected`` (list of :class:`Rejection`)."""

    def __init__(self, items=(), rejected=()):
        super().__init__(items)
        self.rejected: list[Rejection] = list(rejected)

    def rejection_summary(self, limit: int = 5) -> list[str]:
        """The most common rejection reasons, counted (for a plan's warnings)."""
        counts: dict[str, int] = {}
        for r in self.rejected:
            key = r.reason.split(":")[0]
            counts[key] = counts.get(key, 0) + 1
        return [f"{n} layouts rejected: {k}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1])[:limit]]


# ---------------------------------------------------------------------------------- throughput model
# Each constant is a multiplicative factor on the base MFU (the GPU's prior, planner/cost.py).
#: Per doubling of TP inside the NVLink domain: TP all-reduces/reduce-scatters sit on the critical
#: path (Narayanan et al. 2021, Fig. 13-14: per-GPU throughput falls as TP grows); ~5% per doubling
#: is our rounded reading, a planning constant rather than a measurement.
TP_DOUBLING_FACTOR = 0.95
#: TP across nodes (over InfiniBand instead of NVLink): Narayanan et al. 2021 §3.3 recommend TP only
#: within a node; we halve throughput and only search it when max_tp says so.
TP_CROSS_NODE_FACTOR = 0.5
#: Per doubling of CP: Llama 3 (Dubey et al. 2024, Table 4) reports 400 -> 380 TFLOPs/GPU when CP
#: goes 1 -> 16 on 16k H100s: 0.95 over 4 doublings, 0.95**(1/4) per doubling.
CP_DOUBLING_FACTOR = 0.95 ** 0.25
#: Full recompute runs the forward twice: 4 passes of work for 3 passes of model FLOPs.
FULL_RECOMPUTE_FACTOR = 3.0 / 4.0
#: Selective recompute of core attention costs a few percent (Korthikanti et al. 2022, §6: 2-4%
#: overhead); with flash attention the recomputation is the kernel's own backward, so ~0.
SELECTIVE_RECOMPUTE_FACTOR = {True: 1.0, False: 0.97}  # keyed by flash_attention
#: ZeRO-3/FSDP gathers weights in forward and backward: 1.5x the communication of DDP
#: (Rajbhandari et al. 2020, §7); mostly overlapped, we charge 3% (hybrid shard inside a node: 1%).
ZERO3_FACTOR = 0.97
ZERO3_HYBRID_FACTOR = 0.99
#: GEMMs with few rows (tokens per micro-batch per rank) use the tensor cores less well (Anthony
#: et al. 2024: "micro-batch size as large as possible"). Below this many tokens we lose
#: SMALL_MB_LOSS per halving, floored at SMALL_MB_FLOOR. Heuristic constants.
SMALL_MB_TOKENS = 8192
SMALL_MB_LOSS = 0.04
SMALL_MB_FLOOR = 0.7
#: The interleaved schedule sends VPP times more point-to-point messages (Narayanan et al. 2021,
#: §2.2: the smaller bubble comes "at the cost of more communication"); we charge 1% per extra chunk.
INTERLEAVE_FACTOR_PER_CHUNK = 0.99


def pipeline_bubble(pp: int, microbatches: int, vpp: int = 1) -> float:
    """Fraction of a step lost to the pipeline bubble: (PP-1) / (m·VPP + PP-1).

    Narayanan et al. 2021 (Megatron-LM, §2.2): bubble time / ideal time = (p-1)/m for 1F1B and
    (p-1)/(v·m) interleaved; as a fraction of the whole step that is (p-1)/(v·m + p-1).
    """
    if pp <= 1:
        return 0.0
    return (pp - 1) / (microbatches * vpp + pp - 1)


def stage_balance(shape: ModelShape, pp: int) -> float:
    """Mean over max pipeline-stage FLOPs: the last stage also computes the logits (6·h·V per token).

    A pipeline runs at the pace of its slowest stage, so the imbalance is a throughput factor.
    Per-layer FLOPs are Megatron's (planner/shape.py) without the logits term.
    """
    if pp <= 1:
        return 1.0
    logits = 6.0 * shape.d_model * shape.padded_vocab
    per_layer = (shape.flops_per_token_megatron - logits) / shape.n_layers
    layers = math.ceil(shape.n_layers / pp)
    mean = shape.flops_per_token_megatron / pp
    return mean / (layers * per_layer + logits)


def efficiency_factors(layout: Layout, seq_len: int, nvlink_domain: int, flash_attention: bool = True,
                       shape: ModelShape | None = None) -> dict:
    """The multiplicative MFU factors of :func:`search_layouts`' throughput model, by name."""
    f: dict[str, float] = {}
    doublings = math.log2(min(layout.tp, nvlink_domain)) if layout.tp > 1 else 0.0
    f["tp_comm"] = TP_DOUBLING_FACTOR ** doublings
    if layout.tp > nvlink_domain:
        f["tp_cross_node"] = TP_CROSS_NODE_FACTOR
    f["cp_comm"] = CP_DOUBLING_FACTOR ** math.log2(layout.cp)
    f["pipeline_bubble"] = 1.0 - pipeline_bubble(layout.pp, layout.grad_accum, layout.vpp)
    if shape is not None and layout.pp > 1:
        f["stage_balance"] = stage_balance(shape, layout.pp)
    if layout.vpp > 1:
        f["interleave_p2p"] = INTERLEAVE_FACTOR_PER_CHUNK ** (layout.vpp - 1)
    if layout.recompute == "full":
        f["recompute"] = FULL_RECOMPUTE_FACTOR
    elif layout.recompute == "selective":
        f["recompute"] = SELECTIVE_RECOMPUTE_FACTOR[flash_attention]
    if layout.effective_zero_stage >= 3 and layout.shard_size > 1:
        f["zero3_gather"] = ZERO3_HYBRID_FACTOR if layout.shard_size <= nvlink_domain else ZERO3_FACTOR
    tokens = layout.micro_batch * seq_len / layout.cp
    if tokens < SMALL_MB_TOKENS:
        f["small_microbatch"] = max(SMALL_MB_FLOOR, 1.0 - SMALL_MB_LOSS * math.log2(SMALL_MB_TOKENS / tokens))
    return f


def search_layouts(shape: ModelShape, gpu, n_gpus: int, global_batch_seqs: int, seq_len: int | None = None, *,
                   recompute: tuple[str, ...] = RECOMPUTE_CHOICES, zero_stages: tuple[int, ...] = (1,),
                   allow_fsdp: bool = False, max_tp: int | None = None, max_cp: int = 1, max_micro_batch: int = 16,
                   max_vpp: int = 4, mfu: float | None = None, overhead_bytes: float | None = None,
                   flash_attention: bool = True, memory_margin: float = 0.0, top: int = 10) -> LayoutResults:
    """Rank the layouts that fit ``gpu`` memory by estimated throughput, best first.

    Enumerates TP (powers of two up to ``max_tp``, default the GPU's NVLink domain), PP (divisors of
    the layer count), CP (powers of two up to ``max_cp``), VPP (1..``max_vpp``), micro-batches that
    divide the per-rank batch (global = mbs·DP·accum exactly), the recompute modes, and the sharding
    choices (``zero_stages``; FSDP full and hybrid-within-node shard when ``allow_fsdp``). SP is on
    whenever TP > 1 (it saves memory at the same communication volume, Korthikanti et al. 2022).

    Estimated MFU = base MFU (``mfu`` or the GPU's prior) x :func:`efficiency_factors`; throughput =
    MFU·peak·n_gpus / Megatron FLOPs per token. Ties go to smaller TP, then smaller PP, then less
    memory. Layouts that break a Megatron rule or do not fit memory are listed in ``.rejected``.
    Raises UserError when nothing fits, naming the smallest footprint found and what to change.
    """
    from planner.cost import resolve_mfu
    from planner.hardware import get_gpu
    from planner.memory import memory_per_gpu

    g = get_gpu(gpu)
    for name, v in (("n_gpus", n_gpus), ("global batch", global_batch_seqs), ("top", top)):
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise UserError(f"{name} must be a positive integer, got {v!r}")
    s = shape.seq_len if seq_len is None else int(seq_len)
    if s <= 0:
        raise UserError(f"sequence length must be positive, got {seq_len!r}")
    bad_rc = [r for r in recompute if r not in RECOMPUTE_CHOICES]
    if bad_rc or not recompute:
        raise UserError(f"recompute options must be among {RECOMPUTE_CHOICES}, got {recompute!r}")
    base_mfu = resolve_mfu(g, mfu)
    shape = shape.replace(seq_len=s)
    max_tp = g.nvlink_domain if max_tp is None else max_tp
    flops_per_token = shape.flops_per_token_megatron

    if flash_attention and "none" in recompute and "selective" in recompute:
        # with flash attention both keep the same tensors and cost the same: keep Megatron's usual flag
        recompute = tuple(r for r in recompute if r != "none")
    sharding: list[tuple[int, bool, int | None]] = [(z, False, None) for z in zero_stages]
    if allow_fsdp:
        sharding += [(3, True, None), (3, True, g.nvlink_domain)]

    found: list[LayoutCandidate] = []
    rejected: list[Rejection] = []
    smallest: tuple[float, Layout] | None = None
    tps = [t for t in _powers_of_two(min(max_tp, n_gpus)) if n_gpus % t == 0]
    for tp in tps:
        for pp in [p for p in _divisors(shape.n_layers) if n_gpus % (tp * p) == 0]:
            for cp in [c for c in _powers_of_two(max_cp) if n_gpus % (tp * pp * c) == 0]:
                dp = n_gpus // (tp * pp * cp)
                if global_batch_seqs % dp:
                    rejected.append(Rejection(Layout(tp=tp, pp=pp, cp=cp, dp=dp),
                                              f"global batch not divisible by DP: {global_batch_seqs} % {dp} != 0"))
                    continue
                per_rank = global_batch_seqs // dp
                vpps = [1] + ([v for v in range(2, max_vpp + 1) if (shape.n_layers // pp) % v == 0] if pp > 1 else [])
                for mbs in [d for d in _divisors(per_rank) if d <= max_micro_batch]:
                    for vpp in vpps:
                        for rc in recompute:
                            for zero, fsdp, group in sharding:
                                if fsdp and pp > 1:
                                    continue  # Megatron: torch FSDP2 rules out PP > 1 (notes §1c, 17)
                                if group is not None and (group >= dp or dp % group):
                                    continue
                                lay = Layout(tp=tp, pp=pp, cp=cp, dp=dp, vpp=vpp, micro_batch=mbs,
                                             grad_accum=per_rank // mbs, sequence_parallel=tp > 1, recompute=rc,
                                             zero_stage=zero, fsdp=fsdp, shard_group=group)
                                problems = lay.validate(shape, n_gpus, global_batch_seqs, s)
                                if problems:
                                    rejected.append(Rejection(lay, "breaks a Megatron rule: " + problems[0]))
                                    continue
                                mem = memory_per_gpu(shape, lay, flash_attention=flash_attention,
                                                     overhead_bytes=overhead_bytes)
                                if smallest is None or mem.total < smallest[0]:
                                    smallest = (mem.total, lay)
                                if not mem.fits(g, memory_margin):
                                    rejected.append(Rejection(lay, f"does not fit {g.name} memory: needs "
                                                                   f"{mem.total_gib:.1f} GiB > {g.memory_gib:.1f} GiB"))
                                    continue
                                factors = efficiency_factors(lay, s, g.nvlink_domain, flash_attention, shape)
                                est = base_mfu * math.prod(factors.values())
                                tps_ = est * g.peak_bf16_flops * n_gpus / flops_per_token
                                step = global_batch_seqs * s / tps_
                                found.append(LayoutCandidate(lay, mem, est, tps_, step, factors, _why(factors)))
    if not found:
        if smallest is None:
            raise UserError(
                f"no valid layout for {n_gpus} GPUs and global batch {global_batch_seqs}: every TP/PP/CP split "
                "breaks a Megatron rule (heads, layers or batch divisibility); use a GPU count that is a power of "
                "two times a divisor of the layers, and a global batch divisible by the data-parallel size")
        need, lay = smallest
        raise UserError(
            f"nothing fits: the smallest footprint is {need / 2**30:.1f} GiB per GPU ({lay.describe()}) but "
            f"{g.name} has {g.memory_gib:.1f} GiB; use more GPUs, a GPU with more memory, a shorter sequence, "
            "full recompute or FSDP (allow_fsdp)")
    found.sort(key=lambda c: (-round(c.tokens_per_second, 6), c.layout.tp, c.layout.pp, c.layout.cp,
                              c.memory.total))
    return LayoutResults(found[:top], rejected)


def _why(factors: dict[str, float]) -> str:
    losses = [f"{k} x{v:.3f}" for k, v in factors.items() if v < 0.9995]
    return "no modelled losses" if not losses else "losses: " + ", ".join(losses)


def _powers_of_two(limit: int) -> list[int]:
    out, v = [], 1
    while v <= limit:
        out.append(v)
        v *= 2
    return out


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


__all__ = ["Layout", "LayoutCandidate", "LayoutResults", "Rejection", "search_layouts", "pipeline_bubble",
           "efficiency_factors", "RECOMPUTE_CHOICES"]
