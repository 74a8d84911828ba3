"""Step 4, place on hardware: how many GPUs, and the TP/PP/CP/DP layout, micro-batch and sharding.

* GPU count: the request's (a preset's published one), the budget's, else the power of two (>= 8)
  that finishes the budget within ``TARGET_DAYS`` at the GPU's MFU prior (planner/cost.py). A power
  of two: the data-parallel size must divide the global batch (Megatron-LM ``validate_args``), and
  published global batches are powers of two (Llama 2's 1024 sequences); a multiple of 8 such as 88
  left no valid layout for the llama-2-7b preset.
* Layout (this is where the plan chooses TP): fully pinned (TP, PP and micro-batch given) -> that
  layout, checked against Megatron-LM's rules (``Layout.check``: a broken rule is a UserError).
  Otherwise the fastest layout that fits memory (planner/parallel/search.py), restricted to the
  pinned values. When nothing fits and nothing is pinned, the plan keeps a minimal layout (full
  recompute) and warns.
* Sharding: ``dist-opt`` (Megatron's distributed optimizer, ZeRO-1; default), ``ddp``, ``fsdp``
  (full shard) or ``fsdp-hybrid`` (shard within a node, replicate across nodes).
* Memory per GPU: planner/parallel/memory.py, against the GPU's addressable memory.
"""
from __future__ import annotations

import math

from planner.errors import UserError
from planner.hardware import GPU
from planner.parallel.layout import Layout
from planner.parallel.memory import DEFAULT_MEMORY_MARGIN, memory_per_gpu
from planner.parallel.search import LayoutCandidate, search_layouts
from planner.parallel.throughput import estimate_layout
from planner.plan.budget import Budget
from planner.plan.request import PlanRequest
from planner.plan.sections import SHARDING_LAYOUT, MemoryFit, Placement
from planner.shape import ModelShape

TARGET_DAYS = 30.0
ALTERNATIVES_KEPT = 5


def gpu_count(request: PlanRequest, budget: Budget, gpu: GPU) -> int:
    """The request's GPU count, the budget's, or the power of two >= 8 that takes at most ``TARGET_DAYS``."""
    if request.n_gpus or budget.n_gpus:
        return int(request.n_gpus or budget.n_gpus)
    m = request.mfu if request.mfu is not None else gpu.default_mfu
    n = budget.flops / (TARGET_DAYS * 86400.0 * gpu.peak_bf16_flops * m)
    return max(8, 2 ** math.ceil(math.log2(max(n, 1.0))))


def place_on_hardware(request: PlanRequest, shape: ModelShape, gpu: GPU, n_gpus: int, global_batch: int
                      ) -> tuple[Placement, MemoryFit, float | None, list[str], list[LayoutCandidate]]:
    """(placement, memory per GPU, the layout's estimated MFU or None, warnings, the searched
    alternatives best first: the chosen layout and up to ``ALTERNATIVES_KEPT - 1`` runners-up)."""
    gpn = int(request.gpus_per_node or min(gpu.nvlink_domain, n_gpus))
    sharding = request.sharding or "dist-opt"
    if sharding not in SHARDING_LAYOUT:
        raise UserError(f"unknown sharding {sharding!r}; use {', '.join(SHARDING_LAYOUT)}")
    shard_kw = dict(SHARDING_LAYOUT[sharding], **({"shard_group": gpn} if sharding == "fsdp-hybrid" else {}))
    s = shape.replace(seq_len=request.seq_len)
    pins = (request.tp, request.pp, request.micro_batch)
    warnings: list[str] = []
    est_mfu, alternatives = None, []
    if None not in pins:
        lay = pinned_layout(request, s, n_gpus, global_batch, shard_kw)
        mem = memory_per_gpu(s, lay)
        # the same throughput model as a searched layout: a pinned layout equal to it gets the same time
        est_mfu = estimate_layout(s, lay, gpu, n_gpus, global_batch, request.seq_len, gpus_per_node=gpn).mfu
    else:
        if request.tp is not None and (s.n_heads % request.tp or s.d_ffn % request.tp):
            raise UserError(f"TP {request.tp} does not divide heads {s.n_heads} / ffn {s.d_ffn}; "
                            "choose a TP that divides both")
        try:
            alternatives = searched_layouts(request, s, gpu, n_gpus, global_batch, shard_kw, gpn)
            lay, mem, est_mfu = alternatives[0].layout, alternatives[0].memory, alternatives[0].mfu
        except UserError as e:
            if any(p is not None for p in pins):
                raise UserError(f"no valid layout with the pinned --tp/--pp/--micro-batch on {n_gpus} GPUs "
                                f"({e}); change or drop the pinned values, or the GPU count") from None
            warnings.append(f"layout infeasible: {e}")
            lay = fallback_layout(request, s, n_gpus, global_batch, shard_kw, e)
            mem = memory_per_gpu(s, lay)
    placement = Placement(layout=lay, gpu=gpu.name, gpus_per_node=gpn, n_nodes=max(1, math.ceil(n_gpus / gpn)),
                          sharding=sharding, n_gpus=n_gpus)
    margin = memory_margin(request)
    fit = MemoryFit(mem, capacity_gib=gpu.memory_gib, fits=bool(mem.fits(gpu, margin)), margin=margin)
    return placement, fit, est_mfu, warnings, alternatives[:ALTERNATIVES_KEPT]


def memory_margin(request: PlanRequest) -> float:
    """The fraction of HBM the plan keeps free: the request's, else ``DEFAULT_MEMORY_MARGIN``."""
    m = DEFAULT_MEMORY_MARGIN if request.memory_margin is None else request.memory_margin
    if not (isinstance(m, (int, float)) and 0 <= m < 1):
        raise UserError(f"memory margin must be a fraction in [0, 1), got {m!r} (e.g. 0.1 keeps 10% of HBM free)")
    return float(m)


def pinned_layout(request: PlanRequest, shape: ModelShape, n_gpus: int, global_batch: int, shard_kw: dict) -> Layout:
    """The layout of the pinned TP, PP, micro-batch (and CP), checked against Megatron's rules."""
    tp, pp, cp, mbs = request.tp, request.pp, request.cp or 1, request.micro_batch
    if n_gpus % (tp * pp * cp):
        raise UserError(f"{n_gpus} GPUs are not divisible by TP*PP*CP = {tp * pp * cp}; choose other --tp/--gpus")
    dp = n_gpus // (tp * pp * cp)
    lay = Layout(tp=tp, pp=pp, cp=cp, dp=dp, micro_batch=mbs, grad_accum=max(1, global_batch // (mbs * dp)),
                 sequence_parallel=tp > 1, recompute=request.recompute or "selective", **shard_kw)
    lay.check(shape, n_gpus, global_batch, request.seq_len)
    return lay


def searched_layouts(request: PlanRequest, shape: ModelShape, gpu: GPU, n_gpus: int, global_batch: int,
                     shard_kw: dict, gpus_per_node: int) -> list[LayoutCandidate]:
    """The layouts that fit and match the pins, fastest first; UserError if none."""
    tp, pp, mbs = request.tp, request.pp, request.micro_batch
    fsdp = bool(shard_kw.get("fsdp"))
    res = search_layouts(shape, gpu, n_gpus, global_batch, request.seq_len, max_tp=tp or None,
                         recompute=(request.recompute,) if request.recompute else ("none", "selective", "full"),
                         zero_stages=(shard_kw["zero_stage"],) if not fsdp else (1,), allow_fsdp=fsdp,
                         top=ALTERNATIVES_KEPT if not fsdp else 50, tp=tp, pp=pp, micro_batch=mbs,
                         memory_margin=memory_margin(request), gpus_per_node=gpus_per_node)
    items = [c for c in res
             if (tp is None or c.layout.tp == tp) and (pp is None or c.layout.pp == pp)
             and (mbs is None or c.layout.micro_batch == mbs)
             and (not fsdp or (c.layout.fsdp and c.layout.shard_group == shard_kw.get("shard_group")))]
    if not items:
        raise UserError("no layout matches the pinned --tp/--pp/--micro-batch/sharding")
    return items


def fallback_layout(request: PlanRequest, shape: ModelShape, n_gpus: int, global_batch: int, shard_kw: dict,
                    why: UserError) -> Layout:
    """A minimal valid layout (full recompute) to report memory with when nothing fits."""
    tp, pp, cp, mbs = request.tp or 1, request.pp or 1, request.cp or 1, request.micro_batch or 1
    lay = Layout(tp=tp, pp=pp, cp=cp, dp=max(1, n_gpus // (tp * pp * cp)), micro_batch=mbs,
                 recompute=request.recompute or "full", sequence_parallel=tp > 1, **shard_kw)
    lay = lay.replace(grad_accum=max(1, global_batch // (lay.micro_batch * lay.dp)))
    if lay.validate(shape, n_gpus, global_batch, request.seq_len):
        raise UserError(f"no valid layout for {n_gpus} GPUs and global batch {global_batch}: {why}") from None
    return lay
