"""A Llama-style decoder for proxy runs, in μP (via the ``mup`` package) or standard (SP) form.

Architecture: token embedding -> L x [x + r * Attn(RMSNorm(x)); x + r * SwiGLU(RMSNorm(x))] ->
RMSNorm -> readout. RoPE on q and k, no biases, untied embeddings (``MuSharedReadout`` would
rescale a tied embedding with width, mup issue #55), ``r`` the residual-branch multiplier.

μP (Tensor Programs V, Table 8 form, as implemented by ``mup``; rules in docs/CONTRACTS.md):
* ``set_base_shapes`` runs on the fresh model BEFORE the custom init below and before the
  optimizer; base/delta models are built at ``base_width`` and ``2 * base_width`` (d_model, d_ffn
  and heads or head_dim all change, depth does not).
* embedding init N(0, init_std^2) (constant in width), output multiplied by ``alpha_in``;
* hidden matrices: ``mup.init.normal_(std=init_std)`` -> std init_std / sqrt(m_d);
* query projection zero-initialised (option), readout ``MuReadout`` (logits = alpha_out * x W^T /
  m_d) zero-initialised (option) or N(0, init_std^2);
* attention logits ``attn_mult * q.k / head_dim`` (SP: ``attn_mult * q.k / sqrt(head_dim)``).

SP: plain ``nn.Linear`` readout (logits = alpha_out * x W^T), every matrix N(0, init_std^2).

Depth: ``r = 1`` (``none``), ``(L_base/L)^0.5`` (``depth-mup``, Yang et al. 2023, arXiv:2310.02244)
or ``L_base/L`` (``completep``, Dey et al. 2025, arXiv:2505.01618).

Shape: a ``planner.shape.ModelShape`` from ``proxy_train.config.proxy_shape`` (SwiGLU width
``planner.shape.swiglu_ffn_dim``: the multiple of 8 nearest to 8/3 d), so the module built here and
the counts the planner and the ladder use are one description. ``shape.seq_len`` is the RoPE table
length (the longest sequence the model accepts).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from planner.shape import ModelShape
from proxy_train.config import proxy_shape


@dataclass
class ModelConfig:
    """What the module needs: its shape plus the μP/SP forward multipliers and init."""
    shape: ModelShape
    parameterization: str = "mup"
    alpha_in: float = 1.0
    alpha_out: float = 1.0
    attn_mult: float = 1.0
    init_std: float = 0.02
    readout_zero_init: bool = True
    query_zero_init: bool = True
    branch_mult: float = 1.0


def model_config(vocab_size: int, d_model: int, n_layers: int, *, n_heads: int | None = None,
                 head_dim: int | None = None, max_seq_len: int = 4096, **kw) -> ModelConfig:
    """The proxy at width ``d_model`` under the fixed-heads or fixed-head-size rule; ``kw`` are
    the other ModelConfig fields."""
    shape = proxy_shape(vocab_size, d_model, n_layers, n_heads=n_heads, head_dim=head_dim, seq_len=max_seq_len)
    return ModelConfig(shape=shape, **kw)


def branch_multiplier(depth_scaling: str, n_layers: int, base_depth: int) -> float:
    if depth_scaling == "none":
        return 1.0
    if depth_scaling == "depth-mup":
        return (base_depth / n_layers) ** 0.5
    if depth_scaling == "completep":
        return base_depth / n_layers
    raise ValueError(depth_scaling)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return x32.type_as(x) * self.weight


def rope_tables(seq_len: int, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv_freq)  # (T, hd/2)
    return angles.cos(), angles.sin()


def apply_rope(x, cos, sin):
    """Rotate pairs (x[..., :h/2], x[..., h/2:]) by position-dependent angles (GPT-NeoX layout)."""
    x1, x2 = x.chunk(2, dim=-1)
    T = x.shape[-2]
    c, s = cos[:T].to(x.dtype), sin[:T].to(x.dtype)
    return torch.cat([x1 * c - x2 * s, x1 * s + x2 * c], dim=-1)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        s = cfg.shape
        self.n_heads, self.head_dim = s.n_heads, s.head_dim
        self.q_proj = nn.Linear(s.d_model, s.q_dim, bias=False)
        self.k_proj = nn.Linear(s.d_model, s.q_dim, bias=False)
        self.v_proj = nn.Linear(s.d_model, s.q_dim, bias=False)
        self.o_proj = nn.Linear(s.q_dim, s.d_model, bias=False)
        denom = s.head_dim if cfg.parameterization == "mup" else math.sqrt(s.head_dim)
        self.scale = cfg.attn_mult / denom

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        shape = (B, T, self.n_heads, self.head_dim)
        q = self.q_proj(x).view(shape).transpose(1, 2)
        k = self.k_proj(x).view(shape).transpose(1, 2)
        v = self.v_proj(x).view(shape).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scale)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, -1))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        s = cfg.shape
        self.gate_proj = nn.Linear(s.d_model, s.d_ffn, bias=False)
        self.up_proj = nn.Linear(s.d_model, s.d_ffn, bias=False)
        self.down_proj = nn.Linear(s.d_ffn, s.d_model, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.attn_norm = RMSNorm(cfg.shape.d_model, cfg.shape.norm_eps)
        self.attn = Attention(cfg)
        self.mlp_norm = RMSNorm(cfg.shape.d_model, cfg.shape.norm_eps)
        self.mlp = MLP(cfg)
        self.branch_mult = cfg.branch_mult

    def forward(self, x, cos, sin):
        x = x + self.branch_mult * self.attn(self.attn_norm(x), cos, sin)
        return x + self.branch_mult * self.mlp(self.mlp_norm(x))


class Transformer(nn.Module):
    """Forward: token ids (B, T) -> logits (B, T, vocab). Every submodule returns one tensor
    (mup's coord check hooks every module and breaks on tuples holding None)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        s = cfg.shape
        self.embed = nn.Embedding(s.padded_vocab, s.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(s.n_layers))
        self.norm = RMSNorm(s.d_model, s.norm_eps)
        if cfg.parameterization == "mup":
            from mup import MuReadout
            self.lm_head = MuReadout(s.d_model, s.padded_vocab, bias=False,
                                     readout_zero_init=cfg.readout_zero_init, output_mult=cfg.alpha_out)
        else:
            self.lm_head = nn.Linear(s.d_model, s.padded_vocab, bias=False)
        cos, sin = rope_tables(s.seq_len, s.head_dim, s.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def forward(self, idx):
        x = self.cfg.alpha_in * self.embed(idx)
        for block in self.blocks:
            x = block(x, self.rope_cos, self.rope_sin)
        logits = self.lm_head(self.norm(x))
        if self.cfg.parameterization == "sp" and self.cfg.alpha_out != 1.0:
            logits = logits * self.cfg.alpha_out
        return logits

    # ------------------------------------------------------------------ parameter roles
    def param_kind(self, name: str) -> str:
        """embedding | readout | norm | hidden: the groups that get different μP rules."""
        if name.startswith("embed."):
            return "embedding"
        if name.startswith("lm_head."):
            return "readout"
        if name.endswith("norm.weight"):
            return "norm"
        return "hidden"

    def init_weights(self) -> None:
        """Custom init; under μP call only after ``set_base_shapes`` (mup.init reads infshape)."""
        cfg, std = self.cfg, self.cfg.init_std
        with torch.no_grad():
            for name, p in self.named_parameters():
                kind = self.param_kind(name)
                if kind == "norm":
                    p.fill_(1.0)
                elif kind == "embedding":
                    nn.init.normal_(p, mean=0.0, std=std)
                elif kind == "readout":
                    if cfg.readout_zero_init:
                        p.zero_()
                    else:
                        nn.init.normal_(p, mean=0.0, std=std)
                elif cfg.query_zero_init and name.endswith("q_proj.weight"):
                    p.zero_()
                elif cfg.parameterization == "mup":
                    import mup.init
                    mup.init.normal_(p, mean=0.0, std=std)
                else:
                    nn.init.normal_(p, mean=0.0, std=std)


def _at_width(cfg: ModelConfig, width: int, fixed_heads: bool) -> ModelConfig:
    """The same model at another width (μP base/delta shapes): heads or head size kept."""
    s = cfg.shape
    heads = {"n_heads": s.n_heads} if fixed_heads else {"head_dim": s.head_dim}
    return replace(cfg, shape=proxy_shape(s.vocab_size, width, s.n_layers, seq_len=s.seq_len, **heads))


def build_model(cfg: ModelConfig, *, base_width: int | None = None, fixed_heads: bool = False,
                init: bool = True) -> Transformer:
    """Instantiate, attach μP base shapes (μP only), then initialise.

    ``fixed_heads``: the base/delta models keep ``n_heads`` and scale ``head_dim`` (True) or keep
    ``head_dim`` and scale ``n_heads`` (False). Base and delta are built on the meta device, so
    they cost no memory. ``init=False`` skips the custom init (e.g. before loading a checkpoint).
    """
    model = Transformer(cfg)
    if cfg.parameterization == "mup":
        attach_base_shapes(model, base_width or cfg.shape.d_model, fixed_heads)
    if init:
        model.init_weights()
    return model


def attach_base_shapes(model: Transformer, base_width: int, fixed_heads: bool, rescale: bool = True) -> None:
    """``mup.set_base_shapes`` against models at base_width and 2 x base_width (same depth).

    Call with ``rescale=False`` on a model whose parameters were copied or loaded (deepcopy drops
    ``p.infshape``; mup 1.0.0, notes §1.4 V6)."""
    from mup import make_base_shapes, set_base_shapes

    cfg = model.cfg
    for w in (base_width, 2 * base_width):
        if (fixed_heads and w % cfg.shape.n_heads) or (not fixed_heads and w % cfg.shape.head_dim):
            raise ValueError(f"base width {w} does not fit the head rule")
    with torch.device("meta"):
        base = Transformer(_at_width(cfg, base_width, fixed_heads))
        delta = Transformer(_at_width(cfg, 2 * base_width, fixed_heads))
    shapes = make_base_shapes(base, delta)
    set_base_shapes(model, shapes, rescale_params=rescale)


def width_mult(model: Transformer) -> float:
    """m_d of a μP model (1.0 for SP)."""
    p = model.lm_head.weight
    return float(p.infshape.width_mult()) if hasattr(p, "infshape") else 1.0
