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

FFN width rule (recorded in run.json): ``d_ffn = 8 * round(8/3 * d_model / 8)`` (SwiGLU keeps the
parameter count of a 4d GELU MLP; Shazeer 2020), i.e. a multiple of 8 nearest to 8/3 d.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

FFN_RULE = "d_ffn = 8 * round(8/3 * d_model / 8)"


def ffn_dim(d_model: int) -> int:
    return max(8, 8 * int(round(8.0 / 3.0 * d_model / 8.0)))


@dataclass
class ModelConfig:
    vocab_size: int
    d_model: int
    n_layers: int
    n_heads: int
    head_dim: int
    d_ffn: int
    parameterization: str = "mup"
    alpha_in: float = 1.0
    alpha_out: float = 1.0
    attn_mult: float = 1.0
    init_std: float = 0.02
    readout_zero_init: bool = True
    query_zero_init: bool = True
    branch_mult: float = 1.0
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    max_seq_len: int = 4096


def model_config(vocab_size: int, d_model: int, n_layers: int, *, n_heads: int | None = None,
                 head_dim: int | None = None, **kw) -> ModelConfig:
    """Shape at width ``d_model`` under the fixed-heads or fixed-head-size rule."""
    if n_heads is not None:
        head_dim = d_model // n_heads
    else:
        head_dim = head_dim or 32
        n_heads = d_model // head_dim
    return ModelConfig(vocab_size=vocab_size, d_model=d_model, n_layers=n_layers, n_heads=n_heads,
                       head_dim=head_dim, d_ffn=ffn_dim(d_model), **kw)


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
        self.n_heads, self.head_dim = cfg.n_heads, cfg.head_dim
        q_dim = cfg.n_heads * cfg.head_dim
        self.q_proj = nn.Linear(cfg.d_model, q_dim, bias=False)
        self.k_proj = nn.Linear(cfg.d_model, q_dim, bias=False)
        self.v_proj = nn.Linear(cfg.d_model, q_dim, bias=False)
        self.o_proj = nn.Linear(q_dim, cfg.d_model, bias=False)
        denom = cfg.head_dim if cfg.parameterization == "mup" else math.sqrt(cfg.head_dim)
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
        self.gate_proj = nn.Linear(cfg.d_model, cfg.d_ffn, bias=False)
        self.up_proj = nn.Linear(cfg.d_model, cfg.d_ffn, bias=False)
        self.down_proj = nn.Linear(cfg.d_ffn, cfg.d_model, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.attn_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.attn = Attention(cfg)
        self.mlp_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
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
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        if cfg.parameterization == "mup":
            from mup import MuReadout
            self.lm_head = MuReadout(cfg.d_model, cfg.vocab_size, bias=False,
                                     readout_zero_init=cfg.readout_zero_init, output_mult=cfg.alpha_out)
        else:
            self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        cos, sin = rope_tables(cfg.max_seq_len, cfg.head_dim, cfg.rope_theta)
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


def _shape_at(cfg: ModelConfig, width: int, fixed_heads: bool) -> ModelConfig:
    from dataclasses import replace
    if fixed_heads:
        return replace(cfg, d_model=width, head_dim=width // cfg.n_heads, d_ffn=ffn_dim(width))
    return replace(cfg, d_model=width, n_heads=width // cfg.head_dim, d_ffn=ffn_dim(width))


def build_model(cfg: ModelConfig, *, base_width: int | None = None, fixed_heads: bool = False,
                init: bool = True) -> Transformer:
    """Instantiate, attach μP base shapes (μP only), then initialise.

    ``fixed_heads``: the base/delta models keep ``n_heads`` and scale ``head_dim`` (True) or keep
    ``head_dim`` and scale ``n_heads`` (False). Base and delta are built on the meta device, so
    they cost no memory. ``init=False`` skips the custom init (e.g. before loading a checkpoint).
    """
    model = Transformer(cfg)
    if cfg.parameterization == "mup":
        attach_base_shapes(model, base_width or cfg.d_model, fixed_heads)
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
        if (fixed_heads and w % cfg.n_heads) or (not fixed_heads and w % cfg.head_dim):
            raise ValueError(f"base width {w} does not fit the head rule")
    with torch.device("meta"):
        base = Transformer(_shape_at(cfg, base_width, fixed_heads))
        delta = Transformer(_shape_at(cfg, 2 * base_width, fixed_heads))
    shapes = make_base_shapes(base, delta)
    set_base_shapes(model, shapes, rescale_params=rescale)


def width_mult(model: Transformer) -> float:
    """m_d of a μP model (1.0 for SP)."""
    p = model.lm_head.weight
    return float(p.infshape.width_mult()) if hasattr(p, "infshape") else 1.0
