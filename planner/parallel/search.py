"""The layout search: every valid TP/PP/CP/DP/VPP/micro-batch/recompute/sharding split of a GPU count,
kept when it fits memory, ranked by the throughput model (planner.parallel.throughput), the same
``estimate_layout`` a pinned layout gets.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, Iterator

from planner.errors import UserError
from planner.hardware import get_gpu
from planner.parallel.layout import RECOMPUTE_CHOICES, Layout
from planner.parallel.memory import MemoryBreakdown, memory_per_gpu
from planner.parallel.throughput import LayoutEstimate, ThroughputContext, estimate_in_context, explain_estimate
from planner.shape import ModelShape

@dataclass
class LayoutCandidate:
    """A valid layout with its memory per GPU and estimated speed (see :func:`search_layouts`)."""

    layout: Layout
    memory: MemoryBreakdown
    mfu: float  # estimated model FLOPs utilisation
    tokens_per_second: float  # whole job
    step_seconds: float  # one optimizer step
    factors: dict[str, float] = field(default_factory=dict)  # multiplicative, product = mfu / base MFU
    why: str = ""
    seconds: dict[str, float] = field(default_factory=dict)  # step time by component (throughput.py)
    comm_seconds: dict[str, float] = field(default_factory=dict)  # exposed communication by kind

    @classmethod
    def of(cls, estimate: LayoutEstimate, memory: MemoryBreakdown) -> "LayoutCandidate":
        e = estimate
        return cls(e.layout, memory, e.mfu, e.tokens_per_second, e.step_seconds, dict(e.factors), e.why,
                   dict(e.seconds), dict(e.comm_seconds))

    def to_dict(self) -> dict[str, Any]:
        return {"layout": self.layout.to_dict(), "memory": self.memory.to_dict(), "mfu": self.mfu,
                "tokens_per_second": self.tokens_per_second, "step_seconds": self.step_seconds,
                "factors": dict(self.factors), "why": self.why, "seconds": dict(self.seconds),
                "comm_seconds": dict(self.comm_seconds)}


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


def search_layouts(shape: ModelShape, gpu, n_gpus: int, global_batch_seqs: int, seq_len: int | None = None, *,
                   recompute: tuple[str, ...] = RECOMPUTE_CHOICES, zero_stages: tuple[int, ...] = (1,),
                   allow_fsdp: bool = False, max_tp: int | None = None, max_cp: int = 1, max_micro_batch: int = 16,
                   max_vpp: int = 4, mfu: float | None = None, overhead_bytes: float | None = None,
                   flash_attention: bool = True, memory_margin: float = 0.0, top: int = 10,
                   gpus_per_node: int | None = None, overlap_dp: bool = True, tp_comm_overlap: bool = False,
                   kernels: str = "fused", tp: int | None = None, pp: int | None = None,
                   micro_batch: int | None = None) -> LayoutResults:
    """Rank the layouts that fit ``gpu`` memory by estimated throughput, best first.

    Enumerates TP (powers of two up to ``max_tp``, default the GPU's NVLink domain), PP (divisors of
    the layer count), CP (powers of two up to ``max_cp``), VPP (1..``max_vpp``), micro-batches that
    divide the per-rank batch (global = mbs·DP·accum exactly), the recompute modes, and the sharding
    choices (``zero_stages``; FSDP full and hybrid-within-node shard when ``allow_fsdp``). SP is on
    whenever TP > 1 (it saves memory at the same communication volume, Korthikanti et al. 2022).
    ``tp``, ``pp`` and ``micro_batch``, when given, pin those values (only such layouts are tried).

    Each valid layout is timed by planner.parallel.throughput (the model ``estimate_layout`` applies to
    a pinned layout: compute at the base MFU ``mfu``, default the GPU's compute-only prior, plus exposed
    communication, bubble, recompute and optimizer; ``gpus_per_node``, ``overlap_dp``,
    ``tp_comm_overlap`` and ``flash_attention`` go to it, ``kernels`` to the memory model). Memory is
    then checked fastest first until ``top`` layouts fit. Ties go to smaller TP, then smaller PP, then
    less memory. Layouts that break a Megatron rule, and those checked that do not fit memory, are
    listed in ``.rejected``. Raises UserError when nothing fits, naming the smallest footprint found
    and what to change.
    """
    g = get_gpu(gpu)
    if isinstance(top, bool) or not isinstance(top, int) or top <= 0:
        raise UserError(f"top must be a positive integer, got {top!r}")
    ctx = ThroughputContext.of(shape, g, n_gpus, global_batch_seqs, seq_len, base_mfu=mfu,
                               gpus_per_node=gpus_per_node, flash_attention=flash_attention,
                               overlap_dp=overlap_dp, tp_comm_overlap=tp_comm_overlap)
    shape, s = ctx.shape, ctx.shape.seq_len
    bad_rc = [r for r in recompute if r not in RECOMPUTE_CHOICES]
    if bad_rc or not recompute:
        raise UserError(f"recompute options must be among {RECOMPUTE_CHOICES}, got {recompute!r}")
    if flash_attention and "none" in recompute and "selective" in recompute:
        # with flash attention both keep the same tensors and cost the same: keep Megatron's usual flag
        recompute = tuple(r for r in recompute if r != "none")
    sharding: list[tuple[int, bool, int | None]] = [(z, False, None) for z in zero_stages]
    if allow_fsdp:
        sharding += [(3, True, None), (3, True, ctx.node)]

    rejected: list[Rejection] = []
    timed: list[LayoutEstimate] = []
    tp_limit = max(tp or 1, g.nvlink_domain if max_tp is None else max_tp)
    splits = [sp for sp in _grid_splits(shape, n_gpus, tp_limit, max_cp)
              if (tp is None or sp[0] == tp) and (pp is None or sp[1] == pp)]
    mbs = range(1, max_micro_batch + 1) if micro_batch is None else (micro_batch,)
    for lay in _layouts(shape, splits, global_batch_seqs, mbs, max_vpp, recompute, sharding, rejected):
        problems = lay.validate(shape, n_gpus, global_batch_seqs, s)
        if problems:
            rejected.append(Rejection(lay, "breaks a Megatron rule: " + problems[0]))
            continue
        timed.append(estimate_in_context(ctx, lay, explain=False))
    memory = partial(memory_per_gpu, shape, flash_attention=flash_attention, overhead_bytes=overhead_bytes,
                     kernels=kernels)
    found, smallest = _fastest_that_fit(timed, memory, g, memory_margin, top, rejected)
    if not found:
        raise _nothing_fits(g, n_gpus, global_batch_seqs, smallest)
    best = []
    for est, mem in found:
        best.append(LayoutCandidate.of(explain_estimate(est, ctx), mem))
    return LayoutResults(best, rejected)


def _rank(est: LayoutEstimate) -> tuple:
    """Ranking key before memory: faster first, then smaller TP, PP, CP."""
    return -round(est.tokens_per_second, 6), est.layout.tp, est.layout.pp, est.layout.cp


def _fastest_that_fit(timed: list[LayoutEstimate], memory, g, margin: float, top: int, rejected: list[Rejection]
                      ) -> tuple[list[tuple[LayoutEstimate, MemoryBreakdown]], tuple[float, Layout] | None]:
    """The ``top`` fastest layouts that fit memory (ties: less memory first) and the smallest footprint seen.

    Memory is worked out fastest first and only until ``top`` layouts fit and the rank key changes,
    so the result equals ranking every layout; layouts that do not fit go to ``rejected``."""
    timed = sorted(timed, key=_rank)
    found: list[tuple[LayoutEstimate, MemoryBreakdown]] = []
    smallest: tuple[float, Layout] | None = None
    for i, est in enumerate(timed):
        if len(found) >= top and _rank(est) != _rank(timed[i - 1]):
            break
        mem = memory(est.layout)
        if smallest is None or mem.total < smallest[0]:
            smallest = (mem.total, est.layout)
        if not mem.fits(g, margin):
            rejected.append(Rejection(est.layout, f"does not fit {g.name} memory: needs "
                                                  f"{mem.total_gib:.1f} GiB > {g.memory_gib:.1f} GiB"))
            continue
        found.append((est, mem))
    found.sort(key=lambda em: (*_rank(em[0]), em[1].total))
    return found[:top], smallest


def _grid_splits(shape: ModelShape, n_gpus: int, max_tp: int, max_cp: int) -> Iterator[tuple[int, int, int, int]]:
    """(TP, PP, CP, DP) with TP, CP powers of two, PP a divisor of the layers, TP*PP*CP*DP = n_gpus."""
    for tp in [t for t in _powers_of_two(min(max_tp, n_gpus)) if n_gpus % t == 0]:
        for pp in [p for p in _divisors(shape.n_layers) if n_gpus % (tp * p) == 0]:
            for cp in [c for c in _powers_of_two(max_cp) if n_gpus % (tp * pp * c) == 0]:
                yield tp, pp, cp, n_gpus // (tp * pp * cp)


def _layouts(shape: ModelShape, splits, global_batch_seqs: int, micro_batches, max_vpp: int,
             recompute: tuple[str, ...], sharding: list[tuple[int, bool, int | None]],
             rejected: list[Rejection]) -> Iterator[Layout]:
    """Every layout of the splits (micro-batch, VPP, recompute, sharding); a split whose DP does not
    divide the global batch is recorded in ``rejected`` instead."""
    for tp, pp, cp, dp in splits:
        if global_batch_seqs % dp:
            rejected.append(Rejection(Layout(tp=tp, pp=pp, cp=cp, dp=dp),
                                      f"global batch not divisible by DP: {global_batch_seqs} % {dp} != 0"))
            continue
        per_rank = global_batch_seqs // dp
        vpps = [1] + ([v for v in range(2, max_vpp + 1) if (shape.n_layers // pp) % v == 0] if pp > 1 else [])
        for mbs in [d for d in micro_batches if per_rank % d == 0]:
            for vpp in vpps:
                for rc in recompute:
                    for zero, fsdp, group in sharding:
                        if fsdp and pp > 1:
                            continue  # Megatron: torch FSDP2 rules out PP > 1 (notes §1c, 17)
                        if group is not None and (group >= dp or dp % group):
                            continue
                        yield Layout(tp=tp, pp=pp, cp=cp, dp=dp, vpp=vpp, micro_batch=mbs,
                                     grad_accum=per_rank // mbs, sequence_parallel=tp > 1, recompute=rc,
                                     zero_stage=zero, fsdp=fsdp, shard_group=group)


def _nothing_fits(g, n_gpus: int, global_batch_seqs: int, smallest: tuple[float, Layout] | None) -> UserError:
    if smallest is None:
        return UserError(
            f"no valid layout for {n_gpus} GPUs and global batch {global_batch_seqs}: every TP/PP/CP split "
            "breaks a Megatron rule (heads, layers or batch divisibility); use a GPU count that is a power of "
            "two times a divisor of the layers, and a global batch divisible by the data-parallel size")
    need, lay = smallest
    return UserError(
        f"nothing fits: the smallest footprint is {need / 2**30:.1f} GiB per GPU ({lay.describe()}) but "
        f"{g.name} has {g.memory_gib:.1f} GiB; use more GPUs, a GPU with more memory, a shorter sequence, "
        "full recompute or FSDP (allow_fsdp)")


def _powers_of_two(limit: int) -> list[int]:
    out, v = [], 1
    while v <= limit:
        out.append(v)
        v *= 2
    return out


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


__all__ = ["LayoutCandidate", "LayoutResults", "Rejection", "search_layouts"]
