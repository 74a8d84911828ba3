"""Architecture options and z-loss per trainer: which flags express them, and what cannot.

A shape's options (planner/shape.py ``ModelShape``: ``norm``, ``activation``, ``attn_bias``,
``ffn_bias``, ``rotary_fraction``, ``tied``) and the run's z-loss coefficient (``Recipe.z_loss``)
map to each trainer as follows. An option a trainer cannot express makes its exporter refuse
with the reason; the z-loss, a term of the loss and not of the model, is written as a warning
with its coefficient instead, so that a published run that used it (LLM-jp) still exports.

Megatron-LM (``megatron/training/arguments.py`` at the commit of planner/export/megatron_validate.py,
and shared/data/megatron/pretrain_gpt_flags.json):

* ``--normalization`` LayerNorm | RMSNorm; ``--swiglu`` (absent: GELU MLP).
* Biases: ``add_bias_linear`` (default True; ``--disable-bias-linear`` clears it) puts a bias on
  linear_qkv, linear_proj (``megatron/core/transformer/attention.py``) and linear_fc1, linear_fc2
  (``megatron/core/transformer/mlp.py``); ``--add-qkv-bias`` adds one to linear_qkv only. So
  attention + FFN biases -> no flag, none -> ``--disable-bias-linear``; biases on only one of the
  two (``attn_bias`` covers the output projection too) have no Megatron form: refused.
* ``--rotary-percent`` (float, default 1.0) = ``rotary_fraction``.
* ``--untie-embeddings-and-output-weights`` when untied (Megatron ties by default).
* z-loss: no LM-loss z-loss flag; ``--moe-z-loss-coeff`` is the MoE router's (it needs experts).

torchtitan 0.3.0 (the wheel): ``models/common/nn_modules.py`` has ``LayerNorm.Config`` beside
``RMSNorm.Config``; ``models/common/linear.py`` ``Linear.Config.bias``; ``decoder_sharding.py``
shards a colwise bias S(0) and replicates a rowwise one. So LayerNorm and biases are written.
``models/common/feed_forward.py`` ``FeedForward`` is always SwiGLU (w2(silu(w1 x) * w3 x)): a GELU
MLP is refused. ``models/common/rope.py`` ``ComplexRoPE.apply_rotary_emb`` multiplies the whole
head by a cache of ``dim / 2`` complex values: partial rotary is refused. ``components/loss.py``
``CrossEntropyLoss`` has no z-loss term: warned.

Hugging Face: ``ModelShape.hf_unsupported`` (LlamaConfig: RMSNorm, gated MLP, full rotary).
"""
from __future__ import annotations

from typing import Any

from planner.errors import UserError
from planner.plan import Plan
from planner.shape import ModelShape

MEGATRON_Z_LOSS_NOTE = ("Megatron-LM has no LM-loss z-loss flag (--moe-z-loss-coeff is the MoE router's); "
                        "the published run used a fork or a patch")


def z_loss(plan: Plan) -> float:
    """The run's z-loss coefficient: ``training.z_loss`` when the plan has it, else its preset's, else 0."""
    value = getattr(plan.training, "z_loss", None)
    if not value and plan.preset:  # a training section without z_loss (or 0): the preset's published value
        from planner.plan.presets import preset_names, preset_request
        if plan.preset in preset_names():
            recipe = preset_request(plan.preset).recipe
            value = getattr(recipe, "z_loss", None) if recipe is not None else None
    return float(value or 0.0)


def z_loss_warning(plan: Plan, trainer: str, why: str) -> str | None:
    """One line saying the z-loss this trainer will not apply, with its coefficient (None when 0)."""
    coeff = z_loss(plan)
    if not coeff:
        return None
    return (f"WARNING: the plan's z-loss {coeff:g} x log(Z)^2 is NOT applied by this {trainer} launch: {why}; "
            "add it to the loss yourself or accept the difference")


def caveat_lines(plan: Plan, prefix: str) -> list[str]:
    """The published run's caveats (what this launch cannot reproduce, what was assumed), one per line."""
    from planner.plan.presets import preset_caveats

    caveats = preset_caveats(plan.preset) if plan.preset else []
    return [f"{prefix}Published-run caveat: {c}" for c in caveats]


def megatron_bias_args(shape: ModelShape) -> list[tuple[str, Any]]:
    """``--disable-bias-linear`` (no biases), nothing (attention and FFN biases), else UserError."""
    if shape.attn_bias and shape.ffn_bias:
        return []
    if not shape.attn_bias and not shape.ffn_bias:
        return [("--disable-bias-linear", True)]
    which = "attention" if shape.attn_bias else "FFN"
    raise UserError(f"Megatron-LM cannot put biases on the {which} projections only: add_bias_linear sets them on "
                    "QKV, attention output, fc1 and fc2 together (--add-qkv-bias adds QKV alone); give the shape "
                    "both attn_bias and ffn_bias, or neither")


def megatron_vocab_multiple(shape: ModelShape, tp: int) -> int:
    """``--make-vocab-size-divisible-by`` that makes Megatron build ``shape.padded_vocab`` rows.

    Megatron pads the vocabulary to a multiple of this value x TP (``_vocab_size_with_padding``).
    A shape that pads (``pad_vocab_to``) gives its multiple; an unpadded one (K2: 32,032 rows,
    which its trainer kept unpadded) gets the largest power of two up to Megatron's default 128
    for which the padding is a no-op, so the launched model has the planned parameter count.
    """
    if shape.pad_vocab_to:
        return int(shape.pad_vocab_to)
    if shape.vocab_size % tp:
        raise UserError(f"vocab {shape.vocab_size} is not divisible by TP {tp}, so Megatron must pad it, which the "
                        "unpadded shape does not count; give the shape pad_vocab_to (e.g. 128) or another TP")
    m = 128
    while shape.vocab_size % (m * tp):
        m //= 2
    return m


def megatron_architecture_args(shape: ModelShape, tp: int = 1) -> list[tuple[str, Any]]:
    """Tying, RoPE, biases, norm and vocab-padding flags of ``shape`` at TP ``tp`` (module docstring)."""
    a: list[tuple[str, Any]] = []
    if not shape.tied:
        a.append(("--untie-embeddings-and-output-weights", True))
    a.append(("--position-embedding-type", "rope"))
    if shape.rope_theta != 10000.0:
        theta = shape.rope_theta
        a.append(("--rotary-base", int(theta) if theta == int(theta) else theta))
    if shape.rotary_fraction != 1.0:
        a.append(("--rotary-percent", shape.rotary_fraction))
    a += megatron_bias_args(shape)
    a += [("--normalization", "RMSNorm" if shape.norm == "rmsnorm" else "LayerNorm"),
          ("--norm-epsilon", shape.norm_eps), ("--make-vocab-size-divisible-by", megatron_vocab_multiple(shape, tp))]
    return a


def torchtitan_unsupported(shape: ModelShape) -> list[str]:
    """Why torchtitan 0.3.0's building blocks cannot express ``shape`` (module docstring); empty when they can."""
    why = []
    if shape.activation != "swiglu":
        why.append("its FeedForward is always SwiGLU (models/common/feed_forward.py); a GELU MLP has no form")
    if shape.rotary_fraction != 1.0:
        why.append(f"its RoPE rotates the whole head (models/common/rope.py apply_rotary_emb); rotary_fraction "
                   f"{shape.rotary_fraction} ({shape.rotary_dims} of {shape.head_dim} dims) has no form")
    return why


__all__ = ["MEGATRON_Z_LOSS_NOTE", "z_loss", "z_loss_warning", "caveat_lines", "megatron_bias_args", "megatron_vocab_multiple",
           "megatron_architecture_args",
           "torchtitan_unsupported"]
