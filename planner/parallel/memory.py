"""Memory per GPU for training a Llama-style model under a parallel layout.

Two estimators, tested against each other (tests/test_memory.py, tests/test_memory_megatron.py):

* :func:`megatron_theoretical_memory`: Megatron-LM's ``theoretical_memory_usage.py``, re-implemented
  formula by formula with its simplifications (planner/parallel/megatron_memory.py; notes §1e).
* :func:`memory_per_gpu`: our fuller model (below). It reports the peak over pipeline stages.

Precision and optimizer (Megatron's bf16 recipe, AdamW), bytes per parameter:

    bf16 weights 2  +  fp32 gradient accumulation buffer 4  +  fp32 master 4 + Adam m 4 + Adam v 4
    = 18; with the distributed optimizer (ZeRO-1) the last 12 are divided by DP: 6 + 12/DP.

ZeRO-2 also divides the 4 gradient bytes, ZeRO-3 also the 2 weight bytes (plus the bf16 copies of
the layers being computed, gathered on the fly). FSDP2 (torchtitan) keeps *fp32* sharded parameters
(they are the master copy), fp32 sharded gradients and Adam state: 16 bytes / shard, plus gathered
bf16 layers. ``shard_group`` < DP shards within the group only (hybrid shard).

Activations per transformer layer and micro-batch, in bytes, 16-bit activations (Korthikanti et al.
2022, "Reducing Activation Recomputation in Large Transformer Models", §4 and Table 2), written for a
Llama block (RMSNorm, SwiGLU, RoPE, GQA, no biases, dropout p = 0), s = seq/CP, b = micro-batch,
h = d_model, q = heads·head_dim, k = kv_heads·head_dim, f = ffn, a = heads, t = TP. With
``kernels="fused"`` (Megatron with Transformer Engine: norm fused into the next linear, fused SwiGLU):

    kept whole on every TP rank (divided by t only with sequence parallelism):
        2 norm inputs + QKV-matmul input + MLP-up input          8·s·b·h
    split over TP:
        Q, K, V and the attention output (out-projection input) (4q + 4k)·s·b
        SwiGLU: gate and up outputs, and the down-projection input  6·s·b·f
        attention scores without flash attention and recompute none: 2·a·s²·b
        flash attention instead stores its fp32 log-sum-exp:       4·a·s·b

``kernels="eager"`` (FSDP/torchtitan or Hugging Face code run without fused norm/SwiGLU kernels and
without torch.compile) adds what autograd saves in the unfused ops:

* each RMSNorm (Hugging Face ``LlamaRMSNorm``: ``x.to(float32)``, ``pow``, ``mean``, ``rsqrt``,
  ``*``, ``.to(bf16)``, ``weight *``) keeps the fp32 copy of its input (4 bytes, saved by ``pow`` and
  the first ``*``) instead of the bf16 input, plus the bf16 normalised tensor saved by ``weight *``
  (2 bytes): +4·s·b·h per norm, +8·s·b·h per layer (whole), +4·s·b·h for the final norm;
* SwiGLU ``w2(silu(w1(x)) * w3(x))`` (torchtitan ``models/common/feed_forward.py``) keeps the SiLU
  output for the multiply besides the SiLU input: +2·s·b·f (split);
* the loss ``cross_entropy(pred.float(), ...)`` (torchtitan ``components/loss.py``) holds the fp32
  copy of the logits beside log-softmax's fp32 output, where Megatron's vocab-parallel cross entropy
  works in place on one fp32 copy: +4·s·b·V/t on the last stage.
RoPE saves only its (small) cos/sin or complex frequencies; torchtitan passes ``enable_gqa`` to SDPA,
so K and V are not repeated. Architecture options (planner/shape.py): biases add parameters (the
Q, K, V and MLP-up biases split over TP like their matrices, the attention-output and MLP-down biases
whole on every rank, as Megatron's row-parallel linears keep them) but no saved activation (the bias
add is fused into the matmul's epilogue or its input is already saved); LayerNorm saves the same
input as RMSNorm (its per-row mean and rstd are O(s·b)); partial rotary changes nothing stored.
Recent PyTorch builds route ``nn.RMSNorm`` to a fused CUDA kernel
(``_fused_rms_norm``), which removes the norm terms; the SwiGLU and loss terms remain.

With GPT's choices (LayerNorm, GeLU f = 4h, dropout masks, q = k = h) the fused accounting gives
Korthikanti's ``s·b·h·(34 + 5·a·s/h)``, which tests/test_memory.py checks. Assumptions:

* Flash attention (default on) never stores the s² scores, so ``recompute="selective"`` (Megatron
  recomputes core attention) saves nothing more than flash attention already does.
* Full recompute keeps only each layer's input (2·s·b·h, /t with SP) plus, at the peak, one layer's
  full activations while it is recomputed.
* Pipeline: the first stage holds min(PP, micro-batches) micro-batches in flight (1F1B), or
  PP·(1 + (PP−1)/(PP·VPP)) with the interleaved schedule (Narayanan et al. 2021; the same factor as
  Megatron). The last stage holds one micro-batch plus the logits: the fp32 softmax saved by the
  cross-entropy (4·s·b·V/t) and the bf16 logits alive while it is computed (2·s·b·V/t).
* Overhead (:func:`overhead_model`, each term in ``MemoryBreakdown.details``): the CUDA context,
  cuBLAS workspaces, NCCL buffers per communicator the layout creates, and caching-allocator
  fragmentation as a fraction of the activations. The sources are at the constants below.
* Headroom: a plan should use at most ``1 - DEFAULT_MEMORY_MARGIN`` of the GPU (see the constant).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from planner.errors import UserError
from planner.schema import check_record
from planner.hardware import GIB, GPU, get_gpu
from planner.parallel.layout import Layout
from planner.parallel.megatron_memory import megatron_activations, megatron_bytes_per_parameter, megatron_parameters
from planner.shape import ModelShape

MIB = 2**20
BF16 = 2
FP32 = 4
KERNELS = ("fused", "eager")

# Plans keep this fraction of HBM free. The overhead terms below are means of measurements that
# spread widely: GMLake (Guo et al., ASPLOS 2024, arXiv 2401.08156) removed fragmentation worth 15% of
# memory on average but up to 33% across eight LLMs on A100-80GB, arXiv 2507.16274 reports the
# caching allocator wasting up to 43% with virtual pipelines and recompute, and one NCCL
# communicator measured 544-688 MB (NVIDIA/nccl#964). Peaks not modelled come on top:
# optimizer-step and gradient-clipping temporaries (Megatron adds 5% to activations for "optimizer
# and miscellaneous temporaries", theoretical_memory_usage.py) and NCCL connections opened lazily on
# a collective's first use (NCCL_RUNTIME_CONNECT, default on). Worst-case minus mean fragmentation
# (33 - 15 = 18 points) on the 30-50% of HBM that activations take in searched layouts is 5-9% of
# HBM: 10% (8 GiB of an 80 GB H100) covers it.
DEFAULT_MEMORY_MARGIN = 0.10

# CUDA context: 287 MB for a minimal PyTorch program with lazy module loading (pytorch/pytorch#86509,
# 667 MB without), "around 400MB" (pytorch/pytorch#109888), 426 MiB measured with PyTorch 2.10 on an
# RTX 6000 Ada (unslothai/unsloth-zoo#1053). A training step lazily loads more kernels (TE, NCCL,
# cuDNN): 512 MiB.
CUDA_CONTEXT_BYTES = 512 * MIB
# cuBLAS/cuBLASLt workspace per (handle, stream): PyTorch's default is 4096 KiB x 8 = 32 MiB on sm90
# (aten/src/ATen/cuda/CublasHandlePool.cpp; CUBLAS_WORKSPACE_CONFIG ":SIZE_KiB:COUNT"; 2 x 4 MiB +
# 8 x 16 KiB before Hopper), cuBLASLt 32 MiB on Hopper (pytorch/pytorch#120925, after NVIDIA's cuBLAS
# guidance); Transformer Engine allocates its own 32 MiB (+1 KiB) per GEMM stream
# (get_cublas_workspace_size_bytes) for its compute stream and up to 3 userbuffer streams.
CUBLAS_WORKSPACE_BYTES = 32 * MIB
CUBLAS_WORKSPACES = 5  # PyTorch 1 + TE 1 + TE userbuffer streams 3
# NCCL: each channel keeps a buffer per connection for each protocol: Simple NCCL_BUFFSIZE = 4 MiB,
# LL128 120·640·8·8 = 4,915,200 B, LL 8·512·8·16 = 524,288 B (NCCL src/init.cc DEFAULT_*BUFFSIZE,
# src/include/device.h; NVIDIA/nccl#1450: per channel for collectives), 9.19 MiB, allocated as
# 10 MiB with cuMem's 2 MiB granularity (the 10485760-byte allocations in NVIDIA/nccl#1685). A ring
# has 2 connections per channel "regardless of the scale" (sjeaugey in NVIDIA/nccl#864, quoted in
# #986), and NCCL opened 32 channels per GPU pair on 8 H100s (NVIDIA/nccl#1685): 32 x 2 x 10 MiB =
# 640 MiB per communicator, within the 544-688 MB measured per 2- and 4-GPU group on A100s (#964).
NCCL_CONNECTION_BYTES = 10 * MIB
NCCL_CHANNELS = 32
NCCL_BYTES_PER_COMMUNICATOR = NCCL_CHANNELS * 2 * NCCL_CONNECTION_BYTES
# PyTorch's caching allocator: reserved-but-unallocated memory. GMLake (above) reduced fragmentation
# by 15% on average over eight LLMs on A100-80GB (up to 33%). Megatron allocates weights, gradients
# and optimizer state once, in large contiguous buffers (megatron/core/distributed/
# param_and_grad_buffer.py), so we apply the fraction to the dynamic (activation) memory only.
ALLOCATOR_FRAGMENTATION = 0.15
# The former flat overhead: the EleutherAI cookbook's --misc-mem-gib, "~5GiB in our experiments with
# Megatron-DeepSpeed" (notes §5). No longer the default; kept to compare the model against.
DEFAULT_OVERHEAD_BYTES = 5 * GIB


@dataclass(frozen=True)
class MemoryBreakdown:
    """Peak memory of the most loaded GPU, per component, in bytes."""

    weights: float
    gradients: float
    optimizer: float  # fp32 master weights + Adam m and v (sharded as the layout says)
    activations: float
    overhead: float  # the sum of the overhead_* entries of details (or the caller's override)
    params_per_gpu: float  # parameters held by that GPU's model shard (before ZeRO sharding)
    method: str  # "scaleplan" | "megatron"
    stage: str = "first"  # which pipeline stage is the peak: first | last | only
    details: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.activations + self.overhead

    @property
    def total_gib(self) -> float:
        return self.total / GIB

    def headroom(self, gpu: GPU | str) -> float:
        """GPU memory minus ``total`` in bytes (negative: does not fit)."""
        return get_gpu(gpu).memory_bytes - self.total

    def fits(self, gpu: GPU | str, margin: float = 0.0) -> bool:
        """True when ``total`` <= GPU memory x (1 - margin)."""
        return self.total <= get_gpu(gpu).memory_bytes * (1.0 - _check_margin(margin))

    def utilisation(self, gpu: GPU | str) -> float:
        """``total`` as a fraction of the GPU's memory (1.0 = exactly full)."""
        return self.total / get_gpu(gpu).memory_bytes

    def usage(self, gpu: GPU | str, margin: float = DEFAULT_MEMORY_MARGIN) -> dict[str, Any]:
        """Utilisation against a margin: ``utilisation``, ``limit`` (1 - margin), ``margin``,
        ``fits`` (under the margin), ``fits_physically`` (margin 0) and ``headroom_bytes`` (to the
        limit; negative when over it)."""
        g = get_gpu(gpu)
        limit = 1.0 - _check_margin(margin)
        return {"utilisation": self.utilisation(g), "limit": limit, "margin": margin,
                "fits": self.fits(g, margin), "fits_physically": self.fits(g),
                "headroom_bytes": g.memory_bytes * limit - self.total}

    def to_dict(self) -> dict[str, Any]:
        return {**self.components(), "total": self.total, "total_gib": self.total_gib,
                "params_per_gpu": self.params_per_gpu, "method": self.method, "stage": self.stage,
                "details": dict(self.details)}

    def components(self) -> dict[str, float]:
        """Bytes per component: weights, gradients, optimizer, activations, overhead."""
        return {"weights": self.weights, "gradients": self.gradients, "optimizer": self.optimizer,
                "activations": self.activations, "overhead": self.overhead}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "memory", fix: str = "fix the value") -> "MemoryBreakdown":
        """Inverse of :meth:`to_dict`, every field checked (planner.schema); ``total`` and ``total_gib``
        are recomputed."""
        rules = {**dict.fromkeys(("weights", "gradients", "optimizer", "activations", "overhead", "params_per_gpu"),
                                 "nonneg"), "method": ("scaleplan", "megatron"), "stage": ("first", "last", "only")}
        return cls(**check_record(cls, d, where, fix=fix, rules=rules, ignored=("total", "total_gib")))


def _check_margin(margin: float) -> float:
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0.0 <= margin < 1.0:
        raise UserError(f"memory margin must be a fraction in [0, 1), got {margin!r}; e.g. 0.1 keeps 10% free")
    return float(margin)


def megatron_theoretical_memory(shape: ModelShape, layout: Layout, *, num_microbatches: int | None = None,
                                seq_len: int | None = None) -> MemoryBreakdown:
    """Megatron-LM's ``report_theoretical_memory`` (dense GPT path), in bytes (megatron_memory.py).

    ``num_microbatches`` defaults to ``layout.grad_accum``. The weight/optimizer term is split into
    weights (2 bytes), gradients (4) and optimizer (12, or 12/DP with the distributed optimizer)
    so that it can be compared with :func:`memory_per_gpu`; Megatron itself prints only the sum.
    ``details`` holds ``tp_sharded_params``, ``replicated_params`` and ``bytes_per_param``;
    :func:`megatron_branch` names the Megatron function used for the activations.
    """
    s = shape.seq_len if seq_len is None else seq_len
    m = layout.grad_accum if num_microbatches is None else num_microbatches
    sharded, replicated = megatron_parameters(shape, layout)
    shard = sharded + replicated
    per_param = megatron_bytes_per_parameter(layout)
    act, _ = megatron_activations(shape, layout, m, s)
    return MemoryBreakdown(weights=BF16 * shard, gradients=FP32 * shard, optimizer=(per_param - 6) * shard,
                           activations=act, overhead=0.0, params_per_gpu=shard, method="megatron",
                           stage="first" if layout.pp > 1 else "only",
                           details={"bytes_per_param": per_param, "tp_sharded_params": sharded,
                                    "replicated_params": replicated})


def megatron_branch(shape: ModelShape, layout: Layout) -> str:
    """The Megatron function that :func:`megatron_theoretical_memory` used for the activations."""
    return megatron_activations(shape, layout, layout.grad_accum, shape.seq_len)[1]


# ---------------------------------------------------------------------------------- overhead
def nccl_communicators(layout: Layout) -> list[str]:
    """Process groups with their own NCCL communicator that a run of this layout uses.

    The world group (Megatron's barriers and scalar all-reduces), the gradient group (DP x CP:
    Megatron reduces gradients over ``data_parallel_group_with_context_parallel``), TP, PP (its
    send/recv), CP, and the replicate group of hybrid sharding. PyTorch creates each communicator
    on a group's first collective, so groups of size 1 cost nothing.
    """
    groups = {"world": layout.n_gpus > 1, "data-parallel": layout.dp * layout.cp > 1,
              "tensor-parallel": layout.tp > 1, "pipeline-parallel": layout.pp > 1,
              "context-parallel": layout.cp > 1,
              "hybrid-shard replicate": layout.effective_zero_stage > 0 and layout.shard_size < layout.dp}
    return [name for name, used in groups.items() if used]


def overhead_model(layout: Layout, dynamic_bytes: float) -> dict[str, float]:
    """Bytes beyond weights, optimizer state and activations, by source (constants above)."""
    return {"overhead_cuda_context": float(CUDA_CONTEXT_BYTES),
            "overhead_cublas_workspaces": float(CUBLAS_WORKSPACES * CUBLAS_WORKSPACE_BYTES),
            "overhead_nccl_buffers": float(len(nccl_communicators(layout)) * NCCL_BYTES_PER_COMMUNICATOR),
            "overhead_allocator_fragmentation": ALLOCATOR_FRAGMENTATION * dynamic_bytes}


# ---------------------------------------------------------------------------------- our model
def activation_bytes_per_layer(shape: ModelShape, *, seq_len: int, micro_batch: int, tp: int = 1,
                               sequence_parallel: bool = False, recompute: str = "none",
                               flash_attention: bool = True, dropout: bool = False,
                               kernels: str = "fused") -> float:
    """Bytes one transformer layer keeps for backward, for one micro-batch (module docstring).

    ``seq_len`` is the per-rank sequence (seq / CP). ``dropout=True`` adds the masks a GPT-style
    model with dropout stores (1 byte per element: two hidden masks and the attention mask, plus
    the dropped-out scores), which reproduces Korthikanti et al. Table 2. ``kernels="eager"`` adds
    the unfused norm and SwiGLU tensors.
    """
    s, b, h, t = seq_len, micro_batch, shape.d_model, tp
    sp = sequence_parallel and t > 1
    _check_kernels(kernels)
    if recompute == "full":
        return 2 * s * b * h / (t if sp else 1)
    # 2 norm inputs + QKV input + MLP-up input (LayerNorm and RMSNorm keep the same input tensor;
    # their per-row statistics are O(s·b) and ignored, as in Korthikanti et al.)
    whole = 4 * s * b * h + 2 * s * b * h * 2
    if dropout:
        whole += 2 * s * b * h  # masks after the out-projection and after the MLP
    split = (4 * shape.q_dim + 4 * shape.kv_dim) * s * b
    split += (6 if shape.activation == "swiglu" else 4) * s * b * shape.d_ffn
    if kernels == "eager":
        # per norm: the fp32 input copy replaces the bf16 input (+2 bytes), plus the bf16 normalised (+2)
        whole += 2 * ((FP32 - BF16) + BF16) * s * b * h
        if shape.activation == "swiglu":
            split += BF16 * s * b * shape.d_ffn  # the SiLU output, saved by the multiply
    a = shape.n_heads
    if flash_attention:
        split += FP32 * a * s * b
    elif recompute == "none":
        split += 2 * a * s * s * b
        if dropout:
            split += 3 * a * s * s * b  # dropout mask (1 byte) + dropped-out scores (2 bytes)
    return whole / (t if sp else 1) + split / t


def _check_kernels(kernels: str) -> None:
    if kernels not in KERNELS:
        raise UserError(f"kernels must be one of {', '.join(KERNELS)}, got {kernels!r}")


def _in_flight(pp: int, vpp: int, m: int) -> float:
    """Micro-batches whose activations the first pipeline stage holds at the peak."""
    if pp == 1:
        return 1.0
    if vpp > 1:
        return pp * (1 + (pp - 1) / (pp * vpp))
    return float(min(pp, m))


def memory_per_gpu(shape: ModelShape, layout: Layout, *, seq_len: int | None = None,
                   flash_attention: bool = True, overhead_bytes: float | None = None,
                   kernels: str = "fused") -> MemoryBreakdown:
    """Peak memory on the most loaded GPU (max over first and last pipeline stage), in bytes.

    See the module docstring for every term and assumption. ``seq_len`` defaults to
    ``shape.seq_len``. ``overhead_bytes`` replaces :func:`overhead_model` (reported in ``details`` as
    ``overhead_override``). ``kernels`` is ``"fused"`` (Megatron + Transformer Engine) or ``"eager"``.
    """
    s_full = shape.seq_len if seq_len is None else seq_len
    if s_full <= 0:
        raise UserError(f"sequence length must be positive, got {s_full}")
    if overhead_bytes is not None:
        ov = float(overhead_bytes)
        if not math.isfinite(ov) or ov < 0:
            raise UserError(f"overhead must be a finite number of bytes >= 0, got {overhead_bytes!r}")
    _check_kernels(kernels)
    pp, h, V = layout.pp, shape.d_model, shape.padded_vocab
    layers_per_stage = math.ceil(shape.n_layers / pp)
    replicated = 2 * shape.norm_params + shape.replicated_bias_params_per_layer  # row-parallel biases stay whole
    layer_params = (shape.params_per_layer - replicated) / layout.tp + replicated
    emb = V * h / layout.tp
    out = 0.0 if (shape.tied and pp == 1) else V * h / layout.tp  # tied + PP>1: last stage keeps a copy
    if pp == 1:
        stages = {"only": (layers_per_stage * layer_params + emb + out + shape.norm_params, True, True)}
    else:
        stages = {"first": (layers_per_stage * layer_params + emb, True, False),
                  "last": (layers_per_stage * layer_params + out + shape.norm_params, False, True)}
    best: MemoryBreakdown | None = None
    for name, (params, has_emb, has_out) in stages.items():
        act, det = _stage_activations(shape, layout, s_full / layout.cp, flash_attention, kernels, has_emb, has_out)
        weights, grads, opt = _state_bytes(params, layer_params, V * h / layout.tp, layout)
        over = overhead_model(layout, act) if overhead_bytes is None else {"overhead_override": float(overhead_bytes)}
        mb = MemoryBreakdown(weights=weights, gradients=grads, optimizer=opt, activations=act,
                             overhead=sum(over.values()), params_per_gpu=params, method="scaleplan", stage=name,
                             details={**det, "layers_per_stage": layers_per_stage, "shard_size": layout.shard_size,
                                      "nccl_communicators": float(len(nccl_communicators(layout))), **over})
        if best is None or mb.total > best.total:
            best = mb
    assert best is not None
    return best


def _stage_activations(shape: ModelShape, layout: Layout, s: float, flash_attention: bool, kernels: str,
                       has_emb: bool, has_out: bool) -> tuple[float, dict[str, float]]:
    """(activation bytes of one pipeline stage at its peak, details) for per-rank sequence ``s``."""
    tp, b, h, V = layout.tp, layout.micro_batch, shape.d_model, shape.padded_vocab
    sp_div = tp if (layout.sequence_parallel and tp > 1) else 1

    def act_layer(recompute: str) -> float:
        return activation_bytes_per_layer(shape, seq_len=s, micro_batch=b, tp=tp, sequence_parallel=sp_div > 1,
                                          recompute=recompute, flash_attention=flash_attention, kernels=kernels)

    per_layer = act_layer(layout.recompute)
    in_flight = _in_flight(layout.pp, layout.vpp, layout.grad_accum) if has_emb else 1.0
    act = per_layer * math.ceil(shape.n_layers / layout.pp) * in_flight
    if layout.recompute == "full":
        act += act_layer("none")  # one layer rematerialised at a time during backward
    if has_emb:
        act += 8 * s * b * in_flight  # int64 token ids
    if has_out:
        act += 2 * 2 * s * b * h / sp_div  # final-norm input and output-matmul input
        act += (FP32 + BF16) * s * b * V / tp  # fp32 softmax saved by the loss + bf16 logits
        if kernels == "eager":
            act += FP32 * s * b * h / sp_div  # final norm: fp32 input copy + bf16 normalised - bf16 input
            act += FP32 * s * b * V / tp  # fp32 copy of the logits beside log-softmax's fp32 output
    return act, {"activation_per_layer": per_layer, "in_flight_microbatches": in_flight}


def _state_bytes(params: float, layer_params: float, vocab_params: float, layout: Layout) -> tuple[float, ...]:
    """(weights, gradients, optimizer) bytes for ``params`` under the layout's sharding."""
    n = layout.shard_size
    stage = layout.effective_zero_stage
    gathered = 2 * max(layer_params, vocab_params)  # layers gathered at once under ZeRO-3 / FSDP (prefetch)
    if layout.fsdp:
        weights = BF16 * gathered
        grads = FP32 * params / n + FP32 * max(layer_params, vocab_params)
        opt = (FP32 + 2 * FP32) * params / n  # fp32 sharded params are the master copy, + Adam m, v
        return weights, grads, opt
    weights = BF16 * params / (n if stage >= 3 else 1)
    if stage >= 3:
        weights += BF16 * gathered
    grads = FP32 * params / (n if stage >= 2 else 1)
    opt = 3 * FP32 * params / (n if stage >= 1 else 1)
    return weights, grads, opt


__all__ = ["MemoryBreakdown", "memory_per_gpu", "megatron_theoretical_memory", "megatron_branch",
           "activation_bytes_per_layer", "overhead_model", "nccl_communicators", "DEFAULT_MEMORY_MARGIN",
           "DEFAULT_OVERHEAD_BYTES", "KERNELS"]
