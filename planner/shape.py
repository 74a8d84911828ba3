"""ModelShape: a Llama-family decoder, its exact parameter counts and FLOPs per token.

Conventions (stated once, used everywhere):

* ``total_params`` counts every weight: input embedding, L blocks (attention, MLP, two norms),
  the final norm and, when untied, the output projection. Biases are absent unless the shape
  asks for them (Llama has none): ``attn_bias`` adds one to the Q, K, V and attention-output
  projections (q_dim + 2 kv_dim + d per layer), ``ffn_bias`` one to every MLP matrix (2 or 1
  times d_ffn, plus d, per layer), as GPT-2 and LLM360 Crystal do. GPT-2 small checks this:
  its 124,439,808 parameters (HF ``gpt2``) = this count (12 x 768, ffn 3072, vocab 50257, tied,
  LayerNorm, GELU, both biases) + its learned position table 1024 x 768, which RoPE does not have.
* ``rotary_fraction`` (the share of each head's dimensions that RoPE rotates, Megatron's
  ``--rotary-percent``) and the z-loss (a training setting, ``Recipe.z_loss``) change no count.
* ``embedding_params`` = input embedding + output projection (the latter only when untied), both
  at the *padded* vocabulary, as model cards such as llm-jp-3 report them.
* ``non_embedding_params`` = ``total_params - embedding_params`` (Kaplan et al. 2020's N).
* FLOPs per token (training: forward + backward = 3 x forward, 2 FLOPs per multiply-add):

  - ``flops_per_token_6n``: 6 x total_params (Hoffmann et al. 2022's C = 6ND uses total N).
  - ``flops_per_token_palm``: 6 x N_matmul + 12 L H Q T (Chowdhery et al. 2022, App. B), with
    N_matmul = total minus the input-embedding lookup (a lookup is not a matmul; a tied embedding
    is counted since it doubles as the output matmul). Attention is *not* halved for the causal
    mask; torchtitan's MFU uses the same count.
  - ``flops_per_token_megatron``: Megatron-LM's ``num_floating_point_operations`` (training.py,
    core_v0.12+) divided by tokens: 6 x (MLP + QKV/out projections + logits at the padded vocab)
    + 6 T L q for causal attention (QK^T and PV, halved for the mask). Norms are not counted.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planner.errors import UserError
from planner.io import read_json
from planner.schema import check_record
from planner.shape_presets import PRESETS


SWIGLU_FFN_RULE = "d_ffn = 8 * round(8/3 * d_model / 8)"


def swiglu_ffn_dim(d_model: int) -> int:
    """The proxy trainer's SwiGLU width: the multiple of 8 nearest to 8/3 d_model (at least 8).

    Three SwiGLU matrices of width 8/3 d hold as many parameters as a 4d GELU MLP (Shazeer 2020,
    "GLU Variants Improve Transformer"); rounding to a multiple of 8 keeps matmuls aligned. Llama
    rounds *up* to a multiple of 256 instead (``planner.shape_search`` ffn_rule ``swiglu8/3``).
    ``SWIGLU_FFN_RULE`` is this rule as recorded in run.json.
    """
    return max(8, 8 * int(round(8.0 / 3.0 * d_model / 8.0)))


def pad_vocab(vocab: int, multiple: int | None, tp: int = 1) -> int:
    """Megatron's padding: ceil(V / (m * TP)) * m * TP (no padding when ``multiple`` is falsy)."""
    if not multiple:
        return int(vocab)
    step = int(multiple) * int(tp)
    return int(math.ceil(vocab / step) * step)


#: Range rules of ``ModelShape.from_dict`` (planner.schema).
_SHAPE_RULES: dict[str, Any] = {
    **dict.fromkeys(("n_layers", "d_model", "d_ffn", "n_heads", "vocab_size", "n_kv_heads", "head_dim", "seq_len",
                     "pad_vocab_to", "tp", "rope_theta", "norm_eps"), "positive"),
    "norm": ("rmsnorm", "layernorm"), "activation": ("swiglu", "gelu"), "rotary_fraction": "fraction"}


#: Architecture options added after plan files existed, at the values every earlier shape had.
_LLAMA_DEFAULTS: dict[str, Any] = {"attn_bias": False, "ffn_bias": False, "rotary_fraction": 1.0}


@dataclass(frozen=True)
class ModelShape:
    """A Llama-style decoder: RMSNorm, SwiGLU, RoPE, no biases, optional GQA and tying.

    The architecture options cover the published non-Llama runs (GPT-2, LLM360 Crystal):
    ``norm`` LayerNorm, ``activation`` GELU, ``attn_bias`` / ``ffn_bias`` (module docstring) and
    ``rotary_fraction`` < 1 (RoPE on the first fraction x head_dim dimensions of each head).
    """

    n_layers: int
    d_model: int
    d_ffn: int
    n_heads: int
    vocab_size: int
    n_kv_heads: int | None = None
    head_dim: int | None = None
    seq_len: int = 2048
    tied: bool = False
    pad_vocab_to: int | None = None  # pad the vocab to a multiple of this (x TP), Megatron style
    tp: int = 1  # tensor-parallel size used for vocab padding
    norm: str = "rmsnorm"  # rmsnorm | layernorm (LayerNorm has a bias: 2 vectors per norm)
    activation: str = "swiglu"  # swiglu (3 matrices) | gelu (2 matrices)
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    attn_bias: bool = False  # biases on the Q, K, V and attention-output projections
    ffn_bias: bool = False  # biases on every MLP matrix
    rotary_fraction: float = 1.0  # fraction of head_dim that RoPE rotates (Megatron --rotary-percent)
    name: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for attr in ("n_layers", "d_model", "d_ffn", "n_heads", "vocab_size", "seq_len", "tp"):
            v = getattr(self, attr)
            if not isinstance(v, (int,)) or isinstance(v, bool) or v <= 0:
                raise UserError(f"{attr} must be a positive integer, got {v!r}")
        if self.n_kv_heads is None:
            object.__setattr__(self, "n_kv_heads", self.n_heads)
        if self.head_dim is None:
            if self.d_model % self.n_heads:
                raise UserError(
                    f"d_model {self.d_model} is not divisible by heads {self.n_heads}; "
                    "choose heads that divide d_model or give head_dim explicitly"
                )
            object.__setattr__(self, "head_dim", self.d_model // self.n_heads)
        if self.n_kv_heads <= 0 or self.head_dim <= 0:
            raise UserError(f"kv heads and head_dim must be positive, got {self.n_kv_heads} and {self.head_dim}")
        if self.n_heads % self.n_kv_heads:
            raise UserError(
                f"kv heads {self.n_kv_heads} do not divide heads {self.n_heads}; "
                "GQA needs heads to be a multiple of kv heads (kv heads = heads for MHA, 1 for MQA)"
            )
        if self.pad_vocab_to is not None and self.pad_vocab_to <= 0:
            raise UserError(f"pad_vocab_to must be positive, got {self.pad_vocab_to}")
        if self.norm not in ("rmsnorm", "layernorm"):
            raise UserError(f"norm must be rmsnorm or layernorm, got {self.norm!r}")
        if self.activation not in ("swiglu", "gelu"):
            raise UserError(f"activation must be swiglu or gelu, got {self.activation!r}")
        for attr in ("attn_bias", "ffn_bias"):
            if not isinstance(getattr(self, attr), bool):
                raise UserError(f"{attr} must be true or false, got {getattr(self, attr)!r}")
        rf = self.rotary_fraction
        if isinstance(rf, bool) or not isinstance(rf, (int, float)) or not 0 < rf <= 1:
            raise UserError(f"rotary_fraction must be in (0, 1] (the share of head_dim RoPE rotates), got {rf!r}")
        dims = rf * self.head_dim
        if abs(dims - round(dims)) > 1e-9 or round(dims) % 2:
            raise UserError(f"rotary_fraction {rf} x head_dim {self.head_dim} is not an even whole number of "
                            "dimensions; RoPE rotates dimension pairs, so choose a fraction giving an even count")

    # ------------------------------------------------------------------ derived sizes
    @property
    def padded_vocab(self) -> int:
        return pad_vocab(self.vocab_size, self.pad_vocab_to, self.tp)

    @property
    def q_dim(self) -> int:
        return self.n_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.n_kv_heads * self.head_dim

    @property
    def gqa_groups(self) -> int:
        return self.n_heads // self.n_kv_heads

    # ------------------------------------------------------------------ parameter counts
    @property
    def rotary_dims(self) -> int:
        """Dimensions of each head that RoPE rotates (the rest pass through unchanged)."""
        return int(round(self.rotary_fraction * self.head_dim))

    @property
    def attention_bias_params_per_layer(self) -> int:
        """Q, K, V biases (column-parallel under TP) + the output-projection bias (replicated)."""
        return self.q_dim + 2 * self.kv_dim + self.d_model if self.attn_bias else 0

    @property
    def mlp_bias_params_per_layer(self) -> int:
        """Up (and gate) biases (column-parallel) + the down-projection bias (replicated)."""
        if not self.ffn_bias:
            return 0
        return (2 if self.activation == "swiglu" else 1) * self.d_ffn + self.d_model

    @property
    def replicated_bias_params_per_layer(self) -> int:
        """Biases of the row-parallel outputs (attention output, MLP down): every TP rank holds them."""
        return self.d_model * (int(self.attn_bias) + int(self.ffn_bias))

    @property
    def attention_params_per_layer(self) -> int:
        d = self.d_model
        return d * self.q_dim + 2 * d * self.kv_dim + self.q_dim * d + self.attention_bias_params_per_layer

    @property
    def mlp_params_per_layer(self) -> int:
        mats = 3 if self.activation == "swiglu" else 2
        return mats * self.d_model * self.d_ffn + self.mlp_bias_params_per_layer

    @property
    def norm_params(self) -> int:
        """Parameters of one norm layer (gain, plus bias for LayerNorm)."""
        return self.d_model * (1 if self.norm == "rmsnorm" else 2)

    @property
    def params_per_layer(self) -> int:
        return self.attention_params_per_layer + self.mlp_params_per_layer + 2 * self.norm_params

    @property
    def input_embedding_params(self) -> int:
        return self.padded_vocab * self.d_model

    @property
    def output_params(self) -> int:
        return 0 if self.tied else self.padded_vocab * self.d_model

    @property
    def embedding_params(self) -> int:
        return self.input_embedding_params + self.output_params

    @property
    def non_embedding_params(self) -> int:
        return self.n_layers * self.params_per_layer + self.norm_params

    @property
    def total_params(self) -> int:
        return self.non_embedding_params + self.embedding_params

    # ------------------------------------------------------------------ FLOPs per token
    @property
    def flops_per_token_6n(self) -> float:
        return 6.0 * self.total_params

    @property
    def flops_per_token_6n_nonembed(self) -> float:
        return 6.0 * self.non_embedding_params

    @property
    def matmul_params(self) -> int:
        """Parameters that take part in a matmul (all but the input-embedding lookup)."""
        lookup = 0 if self.tied else self.input_embedding_params
        return self.total_params - lookup

    @property
    def flops_per_token_palm(self) -> float:
        attn = 12.0 * self.n_layers * self.n_heads * self.head_dim * self.seq_len
        return 6.0 * self.matmul_params + attn

    @property
    def flops_per_token_megatron(self) -> float:
        L, h, s = self.n_layers, self.d_model, self.seq_len
        q, k = self.q_dim, self.kv_dim
        expansion = 3 if self.activation == "swiglu" else 2
        mlp = 6.0 * h * self.d_ffn * expansion * L
        proj = 6.0 * L * (h * (q + 2 * k) + q * h)
        logits = 6.0 * h * self.padded_vocab
        attn = 6.0 * s * L * q  # causal: (QK^T + PV) x 3 passes x 2 FLOPs / 2 for the mask
        return mlp + proj + logits + attn

    def flops_per_token(self, convention: str = "megatron") -> float:
        table = {
            "6n": self.flops_per_token_6n,
            "palm": self.flops_per_token_palm,
            "megatron": self.flops_per_token_megatron,
        }
        if convention not in table:
            raise UserError(f"unknown FLOPs convention {convention!r}; use one of {sorted(table)}")
        return table[convention]

    # ------------------------------------------------------------------ reports
    def counts(self) -> dict[str, Any]:
        """Every number a user asks for about this shape (the ``scaleplan count --json`` payload)."""
        return {
            "total_params": self.total_params,
            "non_embedding_params": self.non_embedding_params,
            "embedding_params": self.embedding_params,
            "input_embedding_params": self.input_embedding_params,
            "output_params": self.output_params,
            "params_per_layer": self.params_per_layer,
            "vocab_size": self.vocab_size,
            "padded_vocab": self.padded_vocab,
            "head_dim": self.head_dim,
            "n_kv_heads": self.n_kv_heads,
            "seq_len": self.seq_len,
            "flops_per_token_6n": self.flops_per_token_6n,
            "flops_per_token_6n_nonembed": self.flops_per_token_6n_nonembed,
            "flops_per_token_palm": self.flops_per_token_palm,
            "flops_per_token_megatron": self.flops_per_token_megatron,
        }

    def to_dict(self) -> dict[str, Any]:
        """Every field, except architecture options at their Llama defaults (:data:`_LLAMA_DEFAULTS`):
        a Llama shape's dict, and so the plan_hash of every plan made before they existed, is unchanged."""
        d = dataclasses.asdict(self)
        return {k: v for k, v in d.items() if not (k in _LLAMA_DEFAULTS and v == _LLAMA_DEFAULTS[k])}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "model-shape", fix: str = "fix the value") -> "ModelShape":
        """Every field type- and range-checked (planner.schema); UserError "<where>.<field> ...; <fix>"."""
        return cls(**check_record(cls, d, where, fix=fix, rules=_SHAPE_RULES))

    def replace(self, **changes: Any) -> "ModelShape":
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ Hugging Face config.json
    def hf_unsupported(self) -> list[str]:
        """Why transformers' Llama cannot build this shape (empty when it can).

        transformers ``models/llama/modeling_llama.py`` (5.x): ``LlamaRMSNorm`` is the only norm,
        ``LlamaMLP`` is always gated (gate/up/down), ``apply_rotary_pos_emb`` rotates the whole
        head (a ``partial_rotary_factor`` shortens cos/sin, which then no longer broadcast).
        ``attention_bias`` puts a bias on q/k/v/o_proj and ``mlp_bias`` on gate/up/down_proj,
        exactly ``attn_bias`` and ``ffn_bias``.
        """
        why = []
        if self.norm != "rmsnorm":
            why.append("LlamaConfig has no LayerNorm (LlamaRMSNorm only)")
        if self.activation != "swiglu":
            why.append("LlamaMLP is always gated; a plain GELU MLP has no Llama form")
        if self.rotary_fraction != 1.0:
            why.append(f"Llama rotates the whole head; rotary_fraction {self.rotary_fraction} "
                       "(partial rotary) has no Llama form")
        return why

    def to_hf_config(self) -> dict[str, Any]:
        """A LlamaConfig dict; vocab_size is the padded vocab (the embedding's real row count).

        UserError (with :meth:`hf_unsupported`'s reasons) when Llama cannot express the shape.
        """
        why = self.hf_unsupported()
        if why:
            raise UserError(f"cannot write a Hugging Face LlamaConfig for this shape: {'; '.join(why)}; "
                            "use the Megatron export, or a model class of its own (trust_remote_code)")
        return {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "num_hidden_layers": self.n_layers,
            "hidden_size": self.d_model,
            "intermediate_size": self.d_ffn,
            "num_attention_heads": self.n_heads,
            "num_key_value_heads": self.n_kv_heads,
            "head_dim": self.head_dim,
            "vocab_size": self.padded_vocab,
            "tie_word_embeddings": self.tied,
            "max_position_embeddings": self.seq_len,
            "rope_theta": self.rope_theta,
            "rms_norm_eps": self.norm_eps,
            "hidden_act": "silu",
            "attention_bias": self.attn_bias,
            "mlp_bias": self.ffn_bias,
            "torch_dtype": "bfloat16",
        }

    @classmethod
    def from_hf_config(cls, cfg: dict[str, Any] | str | Path, name: str | None = None) -> "ModelShape":
        if not isinstance(cfg, dict):
            path = Path(cfg)
            cfg = read_json(path, "HF config")
            if not isinstance(cfg, dict):
                raise UserError(f"{path} holds a JSON {type(cfg).__name__}, not an object; pass a config.json")
        required = ["num_hidden_layers", "hidden_size", "intermediate_size", "num_attention_heads", "vocab_size"]
        missing = [k for k in required if k not in cfg]
        if missing:
            raise UserError(f"HF config lacks {missing}; a LlamaConfig needs {required}")
        mt = cfg.get("model_type", "llama")
        act = cfg.get("hidden_act", "silu")
        if act not in ("silu", "swish"):
            raise UserError(f"hidden_act {act!r} is not SwiGLU (silu); only Llama-family configs are supported")
        biases = {}
        for k in ("attention_bias", "mlp_bias"):
            v = cfg.get(k, False)
            if not isinstance(v, bool):
                raise UserError(f"HF config field {k} must be true or false, got {v!r}")
            biases[k] = v
        ints = {}
        for k in required + ["num_key_value_heads", "head_dim", "max_position_embeddings"]:
            v = cfg.get(k)
            if v is None:
                continue
            if not isinstance(v, int) or isinstance(v, bool):
                raise UserError(f"HF config field {k} must be an integer, got {v!r}")
            ints[k] = v
        return cls(
            n_layers=ints["num_hidden_layers"],
            d_model=ints["hidden_size"],
            d_ffn=ints["intermediate_size"],
            n_heads=ints["num_attention_heads"],
            n_kv_heads=ints.get("num_key_value_heads"),
            head_dim=ints.get("head_dim"),
            vocab_size=ints["vocab_size"],
            seq_len=ints.get("max_position_embeddings", 2048),
            tied=bool(cfg.get("tie_word_embeddings", False)),
            rope_theta=float(cfg.get("rope_theta", 10000.0)),
            norm_eps=float(cfg.get("rms_norm_eps", 1e-5)),
            attn_bias=biases["attention_bias"], ffn_bias=biases["mlp_bias"],
            name=name or cfg.get("_name_or_path") or (None if mt == "llama" else mt),
        )


# PRESETS (published shapes with their sources) live in planner/shape_presets.py (module size limit).
def preset_shape(name: str, **overrides: Any) -> ModelShape:
    key = name.lower()
    if key not in PRESETS:
        raise UserError(f"unknown model preset {name!r}; known presets: {', '.join(sorted(PRESETS))}")
    return ModelShape(**{**PRESETS[key], **overrides, "name": key})
