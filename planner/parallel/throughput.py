"""Throughput model of a parallel layout: multiplicative factors on the GPU's base MFU.

Conventions: every factor is a number in (0, 1] that multiplies the base MFU (the GPU's prior,
planner/cost.py); the estimated MFU of a layout is ``base * prod(factors)``. Sources per constant.
"""
from __future__ import annotations

import math

from planner.parallel.layout import Layout
from planner.shape import ModelShape

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
