"""Megatron-LM's own memory estimate, re-implemented (dense GPT/Llama path) for cross-checking.

Source: ``megatron/training/theoretical_memory_usage.py`` in NVIDIA/Megatron-LM, read at commit
d98e8a64ddf34856e74b24714e3bedb2f5a39553 (2026-08-22); the functions are
``compute_weight_and_optimizer_memory``, ``compute_activation_memory`` (sequence parallelism with
selective recompute), ``compute_activation_memory_without_sp`` (everything else) and
``report_theoretical_memory`` (which picks between the two). Notes §1e summarise them.

What Megatron does, and therefore what this module does:

* Parameters: attention ``2·h·h·(1 + g/a)·(q/h)``, MLP ``2·h·ffn`` (×3/2 with SwiGLU), two norms of
  ``h`` (RMSNorm) or ``2h`` (LayerNorm) per layer, a final norm, the embedding ``h·V``. Biases are
  never counted. Since commit a7c9e8c (2026-05-14) the norms are *replicated* across TP (divided by
  PP only); the matrices and the embedding are divided by TP. The most loaded shard is the first
  pipeline stage: its layers, the embedding, and 1/PP of the norms; with untied embeddings and
  PP = 1 it also holds the output layer.
* Bytes per parameter: 18 (bf16 weight 2, fp32 gradient 4, fp32 master + Adam m, v 12), or
  ``6 + 12/DP`` with ``--use-distributed-optimizer``. ZeRO-2/3 and FSDP have no formula there; we
  give them the distributed-optimizer value, as Megatron would print for its own sharded modes.
* Activations use the full ``--seq-length`` (context parallelism is ignored), the hidden size for
  the query projection and for K and V (GQA is ignored: its ``TODO``), and GPT's per-layer counts:
  ``s·b·h·(18 + 4·ffn/h)`` with SP + selective recompute (then everything / TP), otherwise
  ``s·b·h·(10 + 24/TP)``. Both add the token ids ``8·s·b·PP`` and the embedding-dropout output
  ``s·b·h·PP``, scale by the pipeline factor, add the output-layer terms when PP = 1, and the
  no-SP formula multiplies the sum by 1.05 ("buffer for optimizer and miscellaneous temporaries").
  Full recompute is not modelled: it falls in the no-SP branch like ``recompute none``.
"""
from __future__ import annotations

from planner.parallel.layout import Layout
from planner.shape import ModelShape

NO_SP_OVERHEAD = 1.05  # compute_activation_memory_without_sp, step 9


def megatron_parameters(shape: ModelShape, layout: Layout) -> tuple[float, float]:
    """(TP-sharded, replicated) parameters on Megatron's most loaded model shard."""
    h, L, a, g = shape.d_model, shape.n_layers, shape.n_heads, shape.n_kv_heads
    tp, pp = layout.tp, layout.pp
    norm = 1 if shape.norm == "rmsnorm" else 2
    gated = 1.5 if shape.activation == "swiglu" else 1.0
    attention = 2 * h * h * ((1 + g / a) * (shape.q_dim / h))
    mlp = 2 * h * shape.d_ffn * gated
    embedding = h * shape.padded_vocab
    tp_sharded = ((attention + mlp) * L / pp + embedding) / tp
    replicated = (2 * h * norm * L + norm * h) / pp
    if not shape.tied and pp == 1:
        tp_sharded += embedding / tp
    return tp_sharded, replicated


def megatron_bytes_per_parameter(layout: Layout) -> float:
    """18, or 6 + 12/DP with the distributed optimizer (ZeRO >= 1 and FSDP are given the latter)."""
    dist_opt = layout.zero_stage >= 1 or layout.fsdp
    return 6 + 12 / layout.dp if dist_opt else 18.0


def megatron_activations(shape: ModelShape, layout: Layout, num_microbatches: int | None,
                         seq_len: int) -> tuple[float, str]:
    """(activation bytes of the first pipeline stage, the Megatron function used)."""
    s, m, b = seq_len, num_microbatches, layout.micro_batch
    h, L, V, ffn = shape.d_model, shape.n_layers, shape.padded_vocab, shape.d_ffn
    tp, pp = layout.tp, layout.pp
    vpp = layout.vpp if layout.vpp > 1 else None
    sbh = s * b * h
    if layout.sequence_parallel and tp > 1 and layout.recompute == "selective":
        act = sbh * (18 + 4 * ffn / h) * L + 8 * s * b * pp + sbh * pp
        act = _pipeline_factor(act, pp, vpp, m)
        if pp == 1:
            act += sbh * 4 * (1 + V / h)
        return act / tp, "compute_activation_memory"
    act = sbh * (10 + 24 / tp) * L + 8 * s * b * pp + sbh * pp
    act = _pipeline_factor(act, pp, vpp, m)
    if pp == 1:
        act += (s * b * V / tp + sbh) * 2
    return act * NO_SP_OVERHEAD, "compute_activation_memory_without_sp"


def _pipeline_factor(act: float, pp: int, vpp: int | None, m: int | None) -> float:
    """Interleaved: x(1 + (PP-1)/(PP·VPP)); 1F1B: x min(1, micro-batches/PP)."""
    if vpp is not None:
        return act * (1 + (pp - 1) / (pp * vpp))
    if pp > 1 and m is not None:
        return act * min(1, m / pp)
    return act


__all__ = ["megatron_parameters", "megatron_bytes_per_parameter", "megatron_activations", "NO_SP_OVERHEAD"]
