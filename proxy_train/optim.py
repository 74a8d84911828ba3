"""AdamW parameter groups by μP role: ``make_optimizer(model, cfg)``.

Conventions (docs/CONTRACTS.md "hparams.yaml"; Tensor Programs V Table 8 as implemented by ``mup``):
* roles come from ``Transformer.param_kind``: embedding | hidden | readout | norm (block norms and
  the final norm are separate groups);
* μP + ``wd_rule`` ``mup``: ``mup.MuAdamW`` divides hidden LR by m_d and multiplies hidden weight
  decay by m_d; μP + ``unscaled``: our own groups, hidden LR / m_d, weight decay unchanged (the
  nanoGPT-mup rule); SP: torch AdamW, the same LR and weight decay for every group. Norm gains
  never decay.
* depth (α = 1/2 depth-μP, α = 1 CompleteP; Dey et al. 2025, arXiv:2505.01618, Table 1, m_L = L /
  L_base): block hidden and block-norm LR x m_L^(α-1); block AdamW eps x m_L^(-α) / m_d.
* every group remembers ``base_lr`` (its LR as built); schedules act on it relatively
  (``proxy_train.schedules``), and ``width_mult`` (its μP m_d, 1 for vectors).
"""
from __future__ import annotations

import torch

from proxy_train.config import TrainConfig
from proxy_train.model import Transformer, width_mult

_DEPTH_ALPHA = {"none": None, "depth-mup": 0.5, "completep": 1.0}


def _param_groups(model: Transformer, cfg: TrainConfig) -> list[dict]:
    alpha = _DEPTH_ALPHA[cfg.depth_scaling]
    m_L = cfg.n_layers / (cfg.base_depth or cfg.n_layers)
    m_d = width_mult(model)
    groups: dict[str, dict] = {}
    for name, p in model.named_parameters():
        kind = model.param_kind(name)
        in_block = name.startswith("blocks.")
        key = kind if kind != "norm" else ("block_norm" if in_block else "final_norm")
        lr, eps = cfg.lr, cfg.eps
        if alpha is not None and in_block:
            lr *= m_L ** (alpha - 1.0)
            eps *= m_L ** (-alpha) / m_d
        wd = 0.0 if kind == "norm" else cfg.weight_decay
        if cfg.parameterization == "mup" and cfg.wd_rule == "unscaled" and kind == "hidden":
            wm = float(p.infshape.width_mult())
            lr /= wm
            key = f"hidden@{wm:.6g}"
        g = groups.setdefault(key, {"params": [], "kind": key, "lr": lr, "weight_decay": wd, "eps": eps})
        g["params"].append(p)
    return list(groups.values())


def make_optimizer(model: Transformer, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW (MuAdamW under μP with wd_rule mup) over the role groups (see the module docstring)."""
    param_groups = _param_groups(model, cfg)
    if cfg.parameterization == "mup" and cfg.wd_rule == "mup":
        from mup import MuAdamW
        opt = MuAdamW(param_groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.AdamW(param_groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay)
    for g in opt.param_groups:
        g["base_lr"] = g["lr"]
        if g["params"] and hasattr(g["params"][0], "infshape"):
            g["width_mult"] = float(g["params"][0].infshape.width_mult()) if g["params"][0].infshape.ninf() == 2 else 1.0
    return opt
