"""Hugging Face export: ``config.json`` for the planned shape.

The config comes from ``ModelShape.to_hf_config`` (vocab_size = the padded vocabulary, the real
row count of the embedding), so the model it builds has exactly ``shape.total_params``
parameters. A ``scaleplan`` block records provenance (transformers keeps unknown keys as
attributes and ignores them otherwise). Architecture options: ``attention_bias`` (q, k, v, o_proj)
and ``mlp_bias`` (gate, up, down_proj) are the shape's ``attn_bias`` and ``ffn_bias``; LayerNorm, a
plain GELU MLP and partial rotary have no Llama (or Granite) form, so such a shape is refused with
the reason (``ModelShape.hf_unsupported``) before anything is written.

μP: a Llama config has no μP field: ``LlamaAttention`` scales attention by ``head_dim ** -0.5``
and ``LlamaForCausalLM`` applies no embedding or logit multiplier, so a μP checkpoint loaded
as Llama would silently run as standard parameterization (logits m_d / alpha_out times too large,
attention sqrt(d_head) / attn_mult times too sharp). A μP plan is therefore exported as
transformers' Granite architecture, which is Llama plus exactly these multipliers
(transformers ``models/granite/modular_granite.py``: ``GraniteModel.forward`` multiplies the
embeddings by ``embedding_multiplier``, ``GraniteAttention`` uses ``attention_multiplier`` as the
softmax scale, ``GraniteDecoderLayer`` scales each residual branch by ``residual_multiplier``,
``GraniteForCausalLM.forward`` divides the logits by ``logits_scaling``; fields of
``configuration_granite.py`` ``GraniteConfig``; weight names are Llama's). We write
``embedding_multiplier = alpha_in``, ``attention_multiplier = attn_mult / d_head``,
``logits_scaling = m_d / alpha_out`` (μP's readout multiplier alpha_out / m_d, inverted),
``residual_multiplier = 1``. This is the forward of μP checkpoints whose weights were trained
with the multipliers applied (Megatron-LM ``--use-mup``, proxy_train). A torchtitan export of
the plan (``--allow-approximate-mup``) folds the multipliers into the weights instead: its
checkpoint is plain Llama (``scaleplan.mup.folded_checkpoint`` says how to load it). The
``scaleplan.mup`` block repeats the values a loader of another framework must apply.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from planner import __version__
from planner.export.common import edited_note, json_text, one_line, write_export
from planner.plan import Plan


def mup_block(plan: Plan) -> dict[str, Any]:
    """The μP forward a loader must apply (module docstring), with its Granite field names."""
    hp = plan.hparams
    return {
        "parameterization": "mup", "m_d": hp.m_d, "width": hp.d_model, "base_width": hp.base_width,
        "embedding_multiplier": hp.embedding.multiplier,
        "output_multiplier": hp.readout.multiplier,
        "attention_scale": hp.attention.scale,
        "applied_by": "GraniteForCausalLM: embeddings x embedding_multiplier, attention softmax scale "
                      "attention_multiplier (instead of 1/sqrt(head_dim)), logits / logits_scaling "
                      "(= x output_multiplier)",
        "weights": "as trained with these multipliers in the forward (Megatron-LM --use-mup, proxy_train)",
        "folded_checkpoint": "a checkpoint from the torchtitan export (--allow-approximate-mup) has the "
                             "multipliers folded into its weights: load it with model_type llama "
                             "(architectures LlamaForCausalLM), without these multipliers",
    }


def hf_config(plan: Plan, command: str | None = None) -> dict[str, Any]:
    """config.json: LlamaForCausalLM, or for a μP plan GraniteForCausalLM with μP's multipliers."""
    cfg = plan.shape.to_hf_config()
    meta: dict[str, Any] = {"version": __version__, "plan_hash": plan.plan_hash,
                            "command": one_line(command or plan.meta.get("command", "")),
                            "total_params": plan.shape.total_params}
    if plan.is_mup:
        hp = plan.hparams
        cfg.update(architectures=["GraniteForCausalLM"], model_type="granite",
                   embedding_multiplier=hp.embedding.multiplier, attention_multiplier=hp.attention.scale,
                   logits_scaling=1.0 / hp.readout.multiplier, residual_multiplier=1.0)
        meta["mup"] = mup_block(plan)
    if edited_note(plan):
        meta["warning"] = edited_note(plan)
    cfg["scaleplan"] = meta
    return cfg


def render_hf(plan: Plan, *, command: str | None = None) -> dict[str, str]:
    return {"config.json": json_text(hf_config(plan, command))}


def export_hf(plan: Plan, out_dir: str | Path, *, command: str | None = None) -> dict[str, Any]:
    """Write :func:`render_hf`'s config.json into ``out_dir``."""
    return write_export("hf", plan, out_dir, render_hf(plan, command=command))
