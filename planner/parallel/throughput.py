"""Throughput model of a parallel layout: the time of one optimizer step, for any layout.

One entry point, :func:`estimate_layout`, serves the layout search (planner/parallel/search.py) and
a pinned layout alike: a pinned layout equal to a searched one gets exactly the searched time.

Step time, in seconds on the slowest pipeline stage, is a sum of components (``LayoutEstimate.seconds``):

* ``compute``: the step's model FLOPs (Megatron's count, planner/shape.py) over all GPUs at the
  *base MFU* x peak. The base MFU is the rate of the compute alone (no communication, no bubble, a
  large micro-batch, a model ``WIDE_HIDDEN`` wide); by default the GPU's end-to-end prior
  (planner/cost.py) x ``BASE_OVER_PRIOR``.
* ``stage_balance``: the last pipeline stage also computes the logits (6·h·V FLOPs per token) and
  holds ceil(L/PP) layers; the pipeline runs at its pace.
* ``recompute``: full recompute runs each layer's forward again (+1/3 of its FLOPs; Megatron does not
  recompute the output layer); selective recompute runs core attention's forward again (2·s·q FLOPs
  per token and layer; Korthikanti et al. 2022, selective activation recomputation), which flash
  attention's backward already does, so it costs nothing more with flash attention.
* ``hidden_size``: narrower models run their GEMMs further from peak (``hidden_size_efficiency``).
* ``small_microbatch``: GEMMs with few rows (tokens per micro-batch per rank) run slower (heuristic).
* ``tp_comm``: with sequence parallelism, per layer and micro-batch 2 all-gathers + 2 reduce-scatters
  forward and the same backward over the activation b·(s/CP)·h (without SP, 2 + 2 all-reduces: the
  same volume, Korthikanti et al. 2022 §4.2.2); full recompute adds the forward's 4 again. On the
  critical path (Narayanan et al. 2021 §3.3) unless ``tp_comm_overlap`` (Transformer Engine's
  ``--tp-comm-overlap``): then hidden behind the layer's GEMMs, exposed only beyond them.
* ``cp_comm``: ring attention passes K/V chunks CP-1 times forward and K/V plus dK/dV backward
  (Megatron's default ``--cp-comm-type p2p``); hidden behind the attention compute, exposed beyond it.
* ``pp_p2p``: each micro-batch sends its activation forward and its gradient back, once per virtual
  stage (Narayanan et al. 2021 §2.2: interleaving "at the cost of more communication"); charged in
  full (Megatron overlaps part of it under interleaving, ``--overlap-p2p-communication``).
* ``pipeline_bubble``: (PP-1)/(m·VPP) of the stage's work per step (Narayanan et al. 2021 §2.2).
* ``dp_comm``: gradients are reduced over DP x CP once per step, in fp32 (Megatron accumulates and
  reduces bf16 gradients in fp32 unless ``--grad-reduce-in-bf16``, notes §1c rule 13): an all-reduce
  (DDP), or a reduce-scatter plus an all-gather of the bf16 weights (distributed optimizer, ZeRO-1);
  ZeRO-2 reduce-scatters per micro-batch; ZeRO-3/FSDP gathers the bf16 weights forward and backward and
  reduce-scatters per micro-batch (1.5x DDP's volume, Rajbhandari et al. 2020 §7), hybrid shard adds
  an all-reduce of the shard across the replicas. With ``overlap_dp`` (Megatron ``--overlap-grad-reduce
  --overlap-param-gather``; FSDP prefetch) the per-step gradient reduction hides behind the last
  micro-batch's backward (gradient sync is off for the others, Megatron ``schedules.py``
  ``no_sync_func``) and the weight gather behind the first one's forward, except the last gradient
  bucket; with VPP the chunks finish PP micro-chunks apart, which widens both windows. Per-micro-batch
  collectives (ZeRO-2/3, FSDP) hide behind their micro-batch. Without ``overlap_dp`` all is exposed.
* ``optimizer``: the Adam update reads and writes ``ADAM_BYTES_PER_PARAM`` per local parameter at HBM
  bandwidth.

Collective times use ring costs on the nccl-tests bus bandwidth (nccl-tests PERFORMANCE.md: an
all-reduce moves 2(n-1)/n of the buffer per rank, a reduce-scatter or all-gather (n-1)/n of the full
buffer). A group's bandwidth is NVLink when it fits the node, else the network: one NIC per GPU, so
a ring with k members per node gets k NICs (capped at NVLink). Ranks are ordered TP, CP, DP, PP
(Megatron's default ``order="tp-cp-ep-dp-pp"``, parallel_state.py). Latency, stragglers, data
loading and checkpoints are not modelled. MFU = model FLOPs / (step time x peak x GPUs).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from planner.errors import UserError
from planner.hardware import GPU, get_gpu
from planner.parallel.layout import Layout
from planner.shape import ModelShape

# ---------------------------------------------------------------------------------- constants
#: Fraction of the NVLink line rate NCCL reaches: "450GB/s is the line rate. With the protocol
#: overhead (~20%) NCCL can get an effective NVLink bandwidth of 370GB/s" (S. Jeaugey, NCCL lead,
#: NVIDIA/nccl-tests issue #212): 370/450.
NVLINK_EFFICIENCY = 370.0 / 450.0
#: Fraction of the NIC line rate NCCL reaches: "For NDR @ 400Gbps you should see 46-48GB/s per NIC"
#: (NVIDIA, NVIDIA/nccl-tests issue #290): 46/50, the low end.
NETWORK_EFFICIENCY = 46.0 / 50.0
#: Bytes per element: bf16 activations and weights, fp32 gradient reduction (Megatron's default
#: with --bf16; torchtitan FSDP2 reduces in fp32 too).
ACT_BYTES, WEIGHT_BYTES, GRAD_BYTES = 2, 2, 4
#: Megatron's DDP gradient bucket: max(40M, 1M x DP) parameters
#: (megatron/core/distributed/distributed_data_parallel.py); the last one cannot overlap.
BUCKET_PARAMS, BUCKET_PARAMS_PER_RANK = 40e6, 1e6
#: AdamW step with fp32 master weights: read gradient, master, m, v (16 bytes), write master, m, v
#: (12) and the bf16 weight (2) = 30 bytes per parameter, memory-bound.
ADAM_BYTES_PER_PARAM = 30
#: GEMMs with few rows (tokens per micro-batch per rank) use the tensor cores less well (Anthony
#: et al. 2024: "micro-batch size as large as possible"). Below SMALL_MB_TOKENS rows we lose
#: SMALL_MB_LOSS per halving, floored at SMALL_MB_FLOOR. The threshold is the smallest micro-batch
#: of the Megatron tables we check against (mbs 1 x seq 2048), which reach their MFU; the loss per
#: halving is a heuristic constant.
SMALL_MB_TOKENS = 2048
SMALL_MB_LOSS = 0.04
SMALL_MB_FLOOR = 0.7
#: Wider models run their GEMMs closer to peak: "larger GEMMs have higher arithmetic intensity and
#: are consequently more efficient" (Megatron-LM README, weak scaling 41% -> 47-48% MFU on H100).
#: Below WIDE_HIDDEN the compute rate scales as (d_model / WIDE_HIDDEN) ** HIDDEN_EXPONENT. Fitted
#: once on the three Megatron tables (H100 2024, A100 2021 and 2022; published MFU rises ~1.4-1.5x over
#: a ~9x range of hidden size): the spread of published / modelled MFU within each table (coefficient
#: of variation) falls from 10%, 15%, 10% at exponent 0 to 5%, 7%, 5% at 0.15; we take 0.15.
WIDE_HIDDEN = 16384
HIDDEN_EXPONENT = 0.15
#: The base MFU (compute alone, at WIDE_HIDDEN) over the GPU's end-to-end MFU prior (planner/cost.py),
#: calibrated once on H100: at 1.33 (base 0.532) this model's median error over the nine rows of the
#: Megatron-LM README H100 table (1.7B-462B, 41-49% MFU, TP/DP/PP overlap on, each row at its published
#: TP and PP) is zero. The A100 tables of Megatron-LM 2021/2022 are checked out of sample: the model
#: lands within 15% (2021) and 20% (2022, it is low for 530B-1T) there; tests/test_throughput.py.
BASE_OVER_PRIOR = 1.33
#: Component order of the multiplicative ``factors`` breakdown.
COMPONENTS = ("stage_balance", "recompute", "hidden_size", "small_microbatch", "tp_comm", "cp_comm", "pp_p2p",
              "pipeline_bubble", "dp_comm", "optimizer")


def pipeline_bubble(pp: int, microbatches: int, vpp: int = 1) -> float:
    """Fraction of a step lost to the pipeline bubble: (PP-1) / (m·VPP + PP-1).

    Narayanan et al. 2021 (Megatron-LM, §2.2): bubble time / ideal time = (p-1)/m for 1F1B and
    (p-1)/(v·m) interleaved; as a fraction of the whole step that is (p-1)/(v·m + p-1).
    """
    if pp <= 1:
        return 0.0
    return (pp - 1) / (microbatches * vpp + pp - 1)


def stage_balance(shape: ModelShape, pp: int) -> float:
    """Mean over max pipeline-stage FLOPs: the last stage also computes the logits (6·h·V per token)."""
    if pp <= 1:
        return 1.0
    logits = 6.0 * shape.d_model * shape.padded_vocab
    per_layer = (shape.flops_per_token_megatron - logits) / shape.n_layers
    return (shape.flops_per_token_megatron / pp) / (math.ceil(shape.n_layers / pp) * per_layer + logits)


def small_microbatch_efficiency(tokens: float) -> float:
    """GEMM efficiency of a micro-batch of ``tokens`` rows per rank (1 at SMALL_MB_TOKENS or more)."""
    if tokens >= SMALL_MB_TOKENS:
        return 1.0
    return max(SMALL_MB_FLOOR, 1.0 - SMALL_MB_LOSS * math.log2(SMALL_MB_TOKENS / tokens))


def hidden_size_efficiency(d_model: int) -> float:
    """Compute-rate factor of a model ``d_model`` wide (1 at ``WIDE_HIDDEN`` or wider)."""
    return min(1.0, d_model / WIDE_HIDDEN) ** HIDDEN_EXPONENT


def base_mfu_prior(gpu: GPU | str) -> float:
    """The default base MFU of ``gpu``: its end-to-end prior x ``BASE_OVER_PRIOR`` (capped at 0.9)."""
    return min(0.9, get_gpu(gpu).default_mfu * BASE_OVER_PRIOR)


def ring_all_reduce(nbytes: float, n: int, bus_bw: float) -> float:
    """Seconds of a ring all-reduce of ``nbytes`` over ``n`` ranks: 2(n-1)/n · bytes / bus bandwidth."""
    return 0.0 if n <= 1 else 2.0 * (n - 1) / n * nbytes / bus_bw


def ring_gather(nbytes: float, n: int, bus_bw: float) -> float:
    """Seconds of a reduce-scatter or all-gather of a ``nbytes`` buffer: (n-1)/n · bytes / bus bw."""
    return 0.0 if n <= 1 else (n - 1) / n * nbytes / bus_bw


def group_bandwidth(gpu: GPU, size: int, stride: int, node: int) -> float:
    """Effective bus bandwidth (bytes/s) of a ring over ``size`` ranks spaced ``stride`` apart.

    Inside one node (``stride * size <= node``): NVLink. Across nodes with k members per node: k
    NICs (one per GPU), capped at NVLink. Both at NCCL's achieved fraction of the line rate.
    """
    nvlink = gpu.nvlink_bandwidth * NVLINK_EFFICIENCY
    if size <= 1 or stride * size <= node:
        return nvlink
    per_node = max(1, min(size, node // stride))
    return min(nvlink, per_node * gpu.network_bandwidth * NETWORK_EFFICIENCY)


@dataclass
class LayoutEstimate:
    """The estimated speed of one layout (see the module docstring)."""

    layout: Layout
    mfu: float  # model FLOPs / (step time x peak x GPUs)
    tokens_per_second: float  # whole job
    step_seconds: float  # one optimizer step
    base_mfu: float  # the compute-only rate the estimate starts from
    seconds: dict[str, float] = field(default_factory=dict)  # step time by component, sums to step_seconds
    comm_seconds: dict[str, float] = field(default_factory=dict)  # exposed communication by kind
    comm_total_seconds: dict[str, float] = field(default_factory=dict)  # before overlap
    factors: dict[str, float] = field(default_factory=dict)  # multiplicative, product = mfu / base_mfu
    why: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"layout": self.layout.to_dict(), "mfu": self.mfu, "tokens_per_second": self.tokens_per_second,
                "step_seconds": self.step_seconds, "base_mfu": self.base_mfu, "seconds": dict(self.seconds),
                "comm_seconds": dict(self.comm_seconds), "comm_total_seconds": dict(self.comm_total_seconds),
                "factors": dict(self.factors), "why": self.why}


@dataclass(frozen=True)
class ThroughputContext:
    """What the estimate needs besides the layout: shape, GPU, node size and options, checked once,
    and the shape's per-token FLOPs and parameter counts worked out once (the search reuses them)."""

    shape: ModelShape  # seq_len set to the training sequence length
    gpu: GPU
    n_gpus: int
    global_batch: int  # sequences per step
    base_mfu: float
    node: int  # GPUs per node that share NVLink
    flash_attention: bool = True
    overlap_dp: bool = True
    tp_comm_overlap: bool = False
    derived: dict[str, float] = field(default_factory=dict, compare=False)
    _bandwidths: dict[tuple[int, int], float] = field(default_factory=dict, compare=False, repr=False)

    def bandwidth(self, size: int, stride: int) -> float:
        """:func:`group_bandwidth` of a group on this GPU and node size (memoised)."""
        key = (size, stride)
        bw = self._bandwidths.get(key)
        if bw is None:
            bw = self._bandwidths[key] = group_bandwidth(self.gpu, size, stride, self.node)
        return bw

    @classmethod
    def of(cls, shape: ModelShape, gpu, n_gpus: int, global_batch_seqs: int, seq_len: int | None = None, *,
           base_mfu: float | None = None, gpus_per_node: int | None = None, flash_attention: bool = True,
           overlap_dp: bool = True, tp_comm_overlap: bool = False) -> "ThroughputContext":
        g = get_gpu(gpu)
        for name, v in (("n_gpus", n_gpus), ("global batch", global_batch_seqs)):
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise UserError(f"{name} must be a positive integer, got {v!r}")
        s = shape.seq_len if seq_len is None else int(seq_len)
        if s <= 0:
            raise UserError(f"sequence length must be positive, got {seq_len!r}")
        base = base_mfu_prior(g) if base_mfu is None else float(base_mfu)
        if not (0.0 < base <= 1.0):
            raise UserError(f"base MFU must be a fraction in (0, 1], got {base_mfu!r}")
        gpn = g.nvlink_domain if gpus_per_node is None else int(gpus_per_node)
        if gpn <= 0:
            raise UserError(f"GPUs per node must be positive, got {gpus_per_node!r}")
        sh = shape.replace(seq_len=s)
        total, logits = sh.flops_per_token_megatron, 6.0 * sh.d_model * sh.padded_vocab
        derived = {"flops_token": total, "logits_token": logits, "layer_token": (total - logits) / sh.n_layers,
                   "attn_fwd_token": 2.0 * s * sh.q_dim,  # causal core attention forward per layer (Megatron)
                   "layer_params": float(sh.params_per_layer), "vocab_params": float(sh.padded_vocab * sh.d_model),
                   "output_params": float(sh.output_params), "rate": g.peak_bf16_flops * base,
                   "hidden_eff": hidden_size_efficiency(sh.d_model)}
        return cls(sh, g, n_gpus, global_batch_seqs, base, min(gpn, g.nvlink_domain), bool(flash_attention),
                   bool(overlap_dp), bool(tp_comm_overlap), derived)


def estimate_layout(shape: ModelShape, layout: Layout, gpu, n_gpus: int, global_batch_seqs: int,
                    seq_len: int | None = None, *, base_mfu: float | None = None, flash_attention: bool = True,
                    gpus_per_node: int | None = None, overlap_dp: bool = True,
                    tp_comm_overlap: bool = False) -> LayoutEstimate:
    """Step time, MFU and throughput of ``layout`` (the one model for every layout; module docstring).

    ``base_mfu`` is the compute-only rate (default :func:`base_mfu_prior`); ``gpus_per_node`` defaults
    to the GPU's NVLink domain; ``overlap_dp`` assumes Megatron's ``--overlap-grad-reduce
    --overlap-param-gather`` (FSDP prefetch); ``tp_comm_overlap`` Transformer Engine's TP overlap.
    The layout is not validated here (``Layout.check`` does that); ``n_gpus`` must equal its size.
    """
    ctx = ThroughputContext.of(shape, gpu, n_gpus, global_batch_seqs, seq_len, base_mfu=base_mfu,
                               gpus_per_node=gpus_per_node, flash_attention=flash_attention,
                               overlap_dp=overlap_dp, tp_comm_overlap=tp_comm_overlap)
    if layout.n_gpus != n_gpus:
        raise UserError(f"layout {layout.describe()} uses {layout.n_gpus} GPUs, not {n_gpus}")
    return estimate_in_context(ctx, layout)


def estimate_in_context(ctx: ThroughputContext, lay: Layout, *, explain: bool = True) -> LayoutEstimate:
    """:func:`estimate_layout` with the checks done once (the search calls this per layout with
    ``explain=False``, which leaves ``factors`` and ``why`` empty, then :func:`explain_estimate` for
    the layouts it returns)."""
    sec, work, mb = _compute_seconds(ctx, lay)
    raw: dict[str, float] = {}
    exposed: dict[str, float] = {}
    _model_parallel_comm(ctx, lay, work, mb, raw, exposed)
    for kind, key in (("tp", "tp_comm"), ("cp", "cp_comm"), ("pp", "pp_p2p")):
        sec[key] = exposed.get(kind, 0.0)
    pipe_work = work + sec["tp_comm"] + sec["cp_comm"] + sec["pp_p2p"]
    sec["pipeline_bubble"] = (lay.pp - 1) / (lay.grad_accum * lay.vpp) * pipe_work if lay.pp > 1 else 0.0
    params = _local_params(ctx, lay)
    _data_parallel_comm(ctx, lay, params, mb[0], raw, exposed)
    sec["dp_comm"] = exposed.get("dp", 0.0)
    shard = lay.shard_size if lay.effective_zero_stage >= 1 else 1
    sec["optimizer"] = params / shard * ADAM_BYTES_PER_PARAM / ctx.gpu.memory_bandwidth
    step = sum(sec.values())
    est = LayoutEstimate(lay, ctx.base_mfu * sec["compute"] / step, ctx.global_batch * ctx.shape.seq_len / step,
                         step, ctx.base_mfu, sec, exposed, raw)
    return explain_estimate(est, ctx) if explain else est


def _compute_seconds(ctx: ThroughputContext, lay: Layout) -> tuple[dict[str, float], float, tuple[float, float]]:
    """(seconds of compute/stage_balance/recompute/hidden_size/small_microbatch, the stage's work per
    step, (compute time, attention time) of one micro-batch)."""
    d, s, m = ctx.derived, ctx.shape.seq_len, lay.grad_accum
    rate = d["rate"]
    layers = -(-ctx.shape.n_layers // lay.pp)
    tokens_rank = ctx.global_batch * s / (lay.dp * lay.tp * lay.cp)  # token-FLOPs share of one GPU
    ideal = d["flops_token"] * ctx.global_batch * s / (ctx.n_gpus * rate)
    stage = (layers * d["layer_token"] + d["logits_token"]) * tokens_rank / rate
    full = lay.recompute == "full"
    if full:
        extra = layers * d["layer_token"] / 3.0 * tokens_rank / rate
    elif lay.recompute == "selective" and not ctx.flash_attention:
        extra = layers * d["attn_fwd_token"] * tokens_rank / rate
    else:
        extra = 0.0
    eff_rows, eff_h = small_microbatch_efficiency(lay.micro_batch * s / lay.cp), d["hidden_eff"]
    narrow = (stage + extra) * (1.0 / eff_h - 1.0)
    small = (stage + extra) / eff_h * (1.0 / eff_rows - 1.0)
    work = stage + extra + narrow + small
    attention = layers * d["attn_fwd_token"] * (4.0 if full else 3.0) * tokens_rank / (rate * eff_rows * eff_h) / m
    sec = {"compute": ideal, "stage_balance": max(0.0, stage - ideal), "recompute": extra,
           "hidden_size": narrow, "small_microbatch": small}
    return sec, work, (work / m, attention)


def _model_parallel_comm(ctx: ThroughputContext, lay: Layout, work: float, mb: tuple[float, float],
                         raw: dict[str, float], exposed: dict[str, float]) -> None:
    """TP collectives, CP ring exchanges and PP sends per step, raw and exposed (filled in place)."""
    sh, s = ctx.shape, ctx.shape.seq_len
    m, layers = lay.grad_accum, math.ceil(sh.n_layers / lay.pp)
    full = lay.recompute == "full"
    act = lay.micro_batch * (s / lay.cp) * sh.d_model * ACT_BYTES
    if lay.tp > 1:
        per_layer = (8 + (4 if full else 0)) * ring_gather(act, lay.tp, ctx.bandwidth(lay.tp, 1))
        raw["tp"] = m * layers * per_layer
        exposed["tp"] = max(0.0, raw["tp"] - work) if ctx.tp_comm_overlap else raw["tp"]
    if lay.cp > 1:
        kv = lay.micro_batch * (s / lay.cp) * 2 * max(1.0, sh.n_kv_heads / lay.tp) * sh.head_dim * ACT_BYTES
        passes = 3 + (1 if full else 0)  # forward K/V; backward K/V and dK/dV; recomputed forward
        raw["cp"] = m * layers * passes * (lay.cp - 1) * kv / ctx.bandwidth(lay.cp, lay.tp)
        exposed["cp"] = max(0.0, raw["cp"] - m * mb[1])
    if lay.pp > 1:
        msg = act / (lay.tp if lay.sequence_parallel else 1)
        span = lay.tp * lay.cp * lay.dp
        bw = ctx.bandwidth(2, span)
        raw["pp"] = exposed["pp"] = m * lay.vpp * 2 * msg / bw


def _local_params(ctx: ThroughputContext, lay: Layout) -> float:
    """Parameters on one GPU of the largest pipeline stage (the embedding or output layer counted)."""
    d = ctx.derived
    if lay.pp == 1:
        return (ctx.shape.n_layers * d["layer_params"] + d["vocab_params"] + d["output_params"]) / lay.tp
    return (-(-ctx.shape.n_layers // lay.pp) * d["layer_params"] + d["vocab_params"]) / lay.tp


def _data_parallel_comm(ctx: ThroughputContext, lay: Layout, params: float, mb_time: float,
                        raw: dict[str, float], exposed: dict[str, float]) -> None:
    """Gradient reduction and weight gathers over data parallelism per step, raw and exposed."""
    t, m = lay.tp, lay.grad_accum
    zero = lay.effective_zero_stage
    # windows: the last micro-batch's backward (gradients) and the first one's forward (weights); with
    # VPP chunks finish p micro-chunks apart (Narayanan et al. 2021 §2.2 schedule), widening both
    spread = 1.0 + (lay.vpp - 1) * lay.pp / lay.vpp if lay.pp > 1 else 1.0
    bwd_mb = mb_time * (0.75 if lay.recompute == "full" else 2.0 / 3.0)  # backward share of a micro-batch
    bwd, fwd = bwd_mb * spread, (mb_time - bwd_mb) * spread
    hide = ctx.overlap_dp
    if zero >= 3:
        sg = lay.shard_size
        bw = ctx.bandwidth(sg, t)
        per_mb = 2 * ring_gather(WEIGHT_BYTES * params, sg, bw) + ring_gather(GRAD_BYTES * params, sg, bw)
        replicas = lay.dp // sg
        rep = ring_all_reduce(GRAD_BYTES * params / sg, replicas, ctx.bandwidth(replicas, t * sg))
        raw["dp"] = m * per_mb + rep
        first_layer = ring_gather(WEIGHT_BYTES * params, sg, bw) / max(1, math.ceil(ctx.shape.n_layers / lay.pp))
        exposed["dp"] = (m * max(0.0, per_mb - mb_time) + first_layer + max(0.0, rep - bwd)) if hide else raw["dp"]
        return
    n = lay.dp * lay.cp  # Megatron reduces gradients over DP x CP
    if n <= 1:
        return
    bw = ctx.bandwidth(n, t)
    tail = min(1.0, max(BUCKET_PARAMS, BUCKET_PARAMS_PER_RANK * n) / params)
    if zero == 0:
        grads, gather = ring_all_reduce(GRAD_BYTES * params, n, bw), 0.0
    else:
        grads, gather = ring_gather(GRAD_BYTES * params, n, bw), ring_gather(WEIGHT_BYTES * params, n, bw)
    if zero == 2:  # gradients reduce-scattered every micro-batch
        raw["dp"] = m * grads + gather
        hidden = m * max(0.0, grads - bwd_mb) + grads * tail + max(gather * tail, gather - fwd)
    else:
        raw["dp"] = grads + gather
        hidden = max(grads * tail, grads - bwd) + max(gather * tail, gather - fwd)
    exposed["dp"] = hidden if hide else raw["dp"]


def _factors(sec: dict[str, float]) -> dict[str, float]:
    """Each component as a multiplicative factor on the base MFU, applied in ``COMPONENTS`` order:
    the product of all factors is compute / step time = MFU / base MFU."""
    out: dict[str, float] = {}
    t = sec["compute"]
    for k in COMPONENTS:
        v = sec.get(k, 0.0)
        if v > 0.0:
            out[k] = t / (t + v)
            t += v
    return out


def explain_estimate(est: LayoutEstimate, ctx: ThroughputContext) -> LayoutEstimate:
    """Fill ``factors`` and the ``why`` line (base MFU, each loss with its factor and seconds, the
    overlap assumptions) of an estimate; returns it."""
    est.factors = _factors(est.seconds)
    losses = [f"{k} x{v:.3f} ({est.seconds[k]:.3g} s)" for k, v in est.factors.items() if v < 0.9995]
    head = f"base MFU {ctx.base_mfu:.3f} (compute alone); "
    tail = "; TP comm " + ("overlapped" if ctx.tp_comm_overlap else "exposed") + \
        ", DP comm " + ("overlapped" if ctx.overlap_dp else "exposed")
    est.why = head + ("no modelled losses" if not losses else "losses: " + ", ".join(losses)) + tail
    return est


__all__ = ["LayoutEstimate", "ThroughputContext", "estimate_layout", "estimate_in_context", "explain_estimate",
           "pipeline_bubble", "hidden_size_efficiency",
           "stage_balance", "small_microbatch_efficiency", "base_mfu_prior", "ring_all_reduce", "ring_gather",
           "group_bandwidth"]
