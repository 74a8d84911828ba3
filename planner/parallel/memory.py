"""Memory per GPU for training a Llama-style model under a parallel layout.

Two estimators, tested against each other (tests/test_memory.py):

* :func:`megatron_theoretical_memory` re-implements Megatron-LM's
  ``megatron/training/theoretical_memory_usage.py`` (read at NVIDIA/Megatron-LM commit 00caa53;
  notes §1e), dense path, formula by formula, including its known simplifications: activations use
  the hidden size for the query projection and ignore GQA, biases are never counted, full recompute
  is not modelled, and the no-SP branch multiplies activations by 1.05.
* :func:`memory_per_gpu` is our fuller model (below). It reports the peak over pipeline stages.

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
h = d_model, q = heads·head_dim, k = kv_heads·head_dim, f = ffn, a = heads, t = TP:

    kept whole on every TP rank (divided by t only with sequence parallelism):
        2 norm inputs + QKV-matmul input + MLP-up input          8·s·b·h
    split over TP:
        Q, K, V and the attention output (out-projection input) (4q + 4k)·s·b
        SwiGLU: gate and up outputs, and the down-projection input  6·s·b·f
        attention scores without flash attention and recompute none: 2·a·s²·b
        flash attention instead stores its fp32 log-sum-exp:       4·a·s·b

With GPT's choices (LayerNorm, GeLU f = 4h, dropout masks, q = k = h) the same accounting gives
Korthikanti's ``s·b·h·(34 + 5·a·s/h)``, which tests/test_memory.py checks. Dropout with p = 0 stores
no mask (PyTorch returns the input unchanged). Assumptions:

* Flash attention (default on) never stores the s² scores, so ``recompute="selective"`` (Megatron
  recomputes core attention) saves nothing more than flash attention already does.
* Full recompute keeps only each layer's input (2·s·b·h, /t with SP) plus, at the peak, one layer's
  full activations while it is recomputed.
* Pipeline: the first stage holds min(PP, micro-batches) micro-batches in flight (1F1B), or
  PP·(1 + (PP−1)/(PP·VPP)) with the interleaved schedule (Narayanan et al. 2021; the same factor as
  Megatron). The last stage holds one micro-batch plus the logits: the fp32 softmax saved by the
  cross-entropy (4·s·b·V/t) and the bf16 logits alive while it is computed (2·s·b·V/t).
* A fixed ``overhead_bytes`` covers the CUDA context, NCCL and cuBLAS workspaces and allocator
  fragmentation: ``DEFAULT_OVERHEAD_BYTES`` = 5 GiB, the EleutherAI cookbook's
  ``--misc-mem-gib`` figure ("~5GiB in our experiments with Megatron-DeepSpeed", notes §5).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from planner.errors import UserError
from planner.schema import check_record
from planner.hardware import GIB, GPU, get_gpu
from planner.parallel.layout import Layout
from planner.shape import ModelShape


DEFAULT_OVERHEAD_BYTES = 5 * GIB
BF16 = 2
FP32 = 4


@dataclass(frozen=True)
class MemoryBreakdown:
    """Peak memory of the most loaded GPU, per component, in bytes."""

    weights: float
    gradients: float
    optimizer: float  # fp32 master weights + Adam m and v (sharded as the layout says)
    activations: float
    overhead: float
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
        return self.total <= get_gpu(gpu).memory_bytes * (1.0 - margin)

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


# ---------------------------------------------------------------------------------- Megatron's formulas
def megatron_theoretical_memory(shape: ModelShape, layout: Layout, *, num_microbatches: int | None = None,
                                seq_len: int | None = None) -> MemoryBreakdown:
    """Megatron-LM's ``report_theoretical_memory`` (dense GPT path), in bytes.

    ``num_microbatches`` defaults to ``layout.grad_accum``. The weight/optimizer term is split into
    weights (2 bytes), gradients (4) and optimizer (12, or 12/DP with the distributed optimizer)
    so that it can be compared with :func:`memory_per_gpu`; Megatron itself prints only the sum.
    Megatron treats ZeRO-2/3 and FSDP like the distributed optimizer (it has no formula for them).
    """
    s = shape.seq_len if seq_len is None else seq_len
    m = layout.grad_accum if num_microbatches is None else num_microbatches
    h, L, a, g = shape.d_model, shape.n_layers, shape.n_heads, shape.n_kv_heads
    V, ffn = shape.padded_vocab, shape.d_ffn
    tp, pp, dp, b = layout.tp, layout.pp, layout.dp, layout.micro_batch
    vpp = layout.vpp if layout.vpp > 1 else None
    norm = 1 if shape.norm == "rmsnorm" else 2
    gated = 1.5 if shape.activation == "swiglu" else 1.0

    # compute_weight_and_optimizer_memory
    q_ratio = shape.q_dim / h
    self_attn = 2 * h * h * ((1 + g / a) * q_ratio)
    per_layer = 2 * h * (ffn * gated + norm) + self_attn
    embedding = h * V
    block = per_layer * L + norm * h
    shard = (block / pp + embedding) / tp
    if not shape.tied and pp == 1:
        shard += embedding / tp
    dist_opt = layout.zero_stage >= 1 or layout.fsdp
    opt_bytes = 12 / dp if dist_opt else 12

    # activations: compute_activation_memory (SP + selective) or ..._without_sp
    sp = layout.sequence_parallel and tp > 1  # Megatron forces SP off at TP 1
    if sp and layout.recompute == "selective":
        act = s * b * h * (18 + 4 * ffn / h) * L
        act += 8 * s * b * pp + s * b * h * pp
        act = _megatron_pp_factor(act, pp, vpp, m)
        if pp == 1:
            act += s * b * h * 4 * (1 + V / h)
        act /= tp
        branch = "compute_activation_memory (SP, selective)"
    else:
        act = s * b * h * (10 + 24 / tp) * L
        act += 8 * s * b * pp + s * b * h * pp
        act = _megatron_pp_factor(act, pp, vpp, m)
        if pp == 1:
            act += (s * b * V / tp + s * b * h) * 2
        act *= 1.05
        branch = "compute_activation_memory_without_sp (x1.05)"
    return MemoryBreakdown(weights=BF16 * shard, gradients=FP32 * shard, optimizer=opt_bytes * shard,
                           activations=act, overhead=0.0, params_per_gpu=shard, method="megatron",
                           stage="first" if pp > 1 else "only",
                           details={"bytes_per_param": 6 + opt_bytes, "branch": branch})


def _megatron_pp_factor(act: float, pp: int, vpp: int | None, m: int | None) -> float:
    if vpp is not None:
        return act * (1 + (pp - 1) / (pp * vpp))
    if pp > 1 and m is not None:
        return act * min(1, m / pp)
    return act


# ---------------------------------------------------------------------------------- our model
def activation_bytes_per_layer(shape: ModelShape, *, seq_len: int, micro_batch: int, tp: int = 1,
                               sequence_parallel: bool = False, recompute: str = "none",
                               flash_attention: bool = True, dropout: bool = False) -> float:
    """Bytes one transformer layer keeps for backward, for one micro-batch (module docstring).

    ``seq_len`` is the per-rank sequence (seq / CP). ``dropout=True`` adds the masks a GPT-style
    model with dropout stores (1 byte per element: two hidden masks and the attention mask, plus
    the dropped-out scores), which reproduces Korthikanti et al. Table 2.
    """
    s, b, h, t = seq_len, micro_batch, shape.d_model, tp
    sp = sequence_parallel and t > 1
    if recompute == "full":
        return 2 * s * b * h / (t if sp else 1)
    # 2 norm inputs + QKV input + MLP-up input (LayerNorm and RMSNorm keep the same input tensor;
    # their per-row statistics are O(s·b) and ignored, as in Korthikanti et al.)
    whole = 4 * s * b * h + 2 * s * b * h * 2
    if dropout:
        whole += 2 * s * b * h  # masks after the out-projection and after the MLP
    split = (4 * shape.q_dim + 4 * shape.kv_dim) * s * b
    split += (6 if shape.activation == "swiglu" else 4) * s * b * shape.d_ffn
    a = shape.n_heads
    if flash_attention:
        split += FP32 * a * s * b
    elif recompute == "none":
        split += 2 * a * s * s * b
        if dropout:
            split += 3 * a * s * s * b  # dropout mask (1 byte) + dropped-out scores (2 bytes)
    return whole / (t if sp else 1) + split / t


def _in_flight(pp: int, vpp: int, m: int) -> float:
    """Micro-batches whose activations the first pipeline stage holds at the peak."""
    if pp == 1:
        return 1.0
    if vpp > 1:
        return pp * (1 + (pp - 1) / (pp * vpp))
    return float(min(pp, m))


def memory_per_gpu(shape: ModelShape, layout: Layout, *, seq_len: int | None = None,
                   flash_attention: bool = True, overhead_bytes: float | None = None) -> MemoryBreakdown:
    """Peak memory on the most loaded GPU (max over first and last pipeline stage), in bytes.

    See the module docstring for every term and assumption. ``seq_len`` defaults to
    ``shape.seq_len``; ``overhead_bytes`` to ``DEFAULT_OVERHEAD_BYTES``.
    """
    s_full = shape.seq_len if seq_len is None else seq_len
    if s_full <= 0:
        raise UserError(f"sequence length must be positive, got {s_full}")
    overhead = DEFAULT_OVERHEAD_BYTES if overhead_bytes is None else float(overhead_bytes)
    if not math.isfinite(overhead) or overhead < 0:
        raise UserError(f"overhead must be a finite number of bytes >= 0, got {overhead_bytes!r}")
    tp, pp, cp = layout.tp, layout.pp, layout.cp
    s = s_full / cp
    b = layout.micro_batch
    h, V = shape.d_model, shape.padded_vocab
    sp = layout.sequence_parallel and tp > 1
    layers_per_stage = math.ceil(shape.n_layers / pp)

    layer_params = shape.attention_params_per_layer / tp + shape.mlp_params_per_layer / tp + 2 * shape.norm_params
    emb = V * h / tp
    out = 0.0 if (shape.tied and pp == 1) else V * h / tp  # tied + PP>1: last stage keeps a copy
    stages = {}
    if pp == 1:
        stages["only"] = (layers_per_stage * layer_params + emb + out + shape.norm_params, True, True)
    else:
        stages["first"] = (layers_per_stage * layer_params + emb, True, False)
        stages["last"] = (layers_per_stage * layer_params + out + shape.norm_params, False, True)

    def act_layer(recompute: str) -> float:
        return activation_bytes_per_layer(shape, seq_len=s, micro_batch=b, tp=tp, sequence_parallel=sp,
                                          recompute=recompute, flash_attention=flash_attention)

    per_layer = act_layer(layout.recompute)
    full_layer = act_layer("none" if layout.recompute == "full" else layout.recompute)
    sp_div = tp if sp else 1
    best: MemoryBreakdown | None = None
    for name, (params, has_emb, has_out) in stages.items():
        in_flight = _in_flight(pp, layout.vpp, layout.grad_accum) if has_emb else 1.0
        act = per_layer * layers_per_stage * in_flight
        if layout.recompute == "full":
            act += full_layer  # one layer rematerialised at a time during backward
        if has_emb:
            act += 8 * s * b * in_flight  # int64 token ids
        if has_out:
            act += 2 * 2 * s * b * h / sp_div  # final-norm input and output-matmul input
            act += (FP32 + BF16) * s * b * V / tp  # fp32 softmax saved by the loss + bf16 logits
        weights, grads, opt = _state_bytes(params, layer_params, V * h / tp, layout)
        mb = MemoryBreakdown(weights=weights, gradients=grads, optimizer=opt, activations=act, overhead=overhead,
                             params_per_gpu=params, method="scaleplan", stage=name,
                             details={"activation_per_layer": per_layer, "in_flight_microbatches": in_flight,
                                      "layers_per_stage": layers_per_stage, "shard_size": layout.shard_size})
        if best is None or mb.total > best.total:
            best = mb
    assert best is not None
    return best


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


__all__ = ["MemoryBreakdown", "memory_per_gpu", "megatron_theoretical_memory", "activation_bytes_per_layer",
           "DEFAULT_OVERHEAD_BYTES"]
