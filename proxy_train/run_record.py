"""run.json: the record of one proxy run, built from a finished (or stopped) ``Trainer``.

Conventions:
* loss in nats per token; ``tokens`` = steps x batch x seq_len actually trained.
* N: ``total_params`` / ``non_embedding_params`` from ``planner.shape.ModelShape`` (the shape the
  model was built from; checked against the module's own parameter count).
* FLOPs: ``flops_6n`` = 6 N_total D (Hoffmann et al. 2022); ``flops_with_attention`` uses the PaLM
  count (Chowdhery et al. 2022, App. B: 6 N_matmul + 12 L H Q T per token). ``flops`` = ``flops_6n``.
* ``hyperparameters.groups``: per optimizer group, the LR, weight decay, eps and init std actually
  used (after μP transfer), so a run can be checked without re-deriving the rules.
"""
from __future__ import annotations

import math
import platform

import torch

from planner import __version__
from planner.shape import SWIGLU_FFN_RULE
from proxy_train.model import width_mult
from proxy_train.trainer import Trainer


def versions() -> dict:
    import mup
    return {"python": platform.python_version(), "torch": torch.__version__,
            "mup": getattr(mup, "__version__", "1.0.0"), "scaleplan": __version__}


def _group_records(tr: Trainer) -> list[dict]:
    cfg = tr.cfg
    groups = []
    for g in tr.optimizer.param_groups:
        if not g["params"]:
            continue
        kind = g["kind"]
        wm = g.get("width_mult", 1.0)
        if kind.startswith("hidden"):
            init = cfg.init_std / math.sqrt(wm) if cfg.parameterization == "mup" else cfg.init_std
        elif kind == "readout":
            init = 0.0 if cfg.zero_readout else cfg.init_std
        elif kind == "embedding":
            init = cfg.init_std
        else:
            init = None  # norm gains start at 1
        groups.append({"kind": kind, "n_params": sum(p.numel() for p in g["params"]), "width_mult": wm,
                       "lr": g["base_lr"], "weight_decay": g["weight_decay"], "eps": g["eps"], "init_std": init})
    return groups


def _hyperparameters(tr: Trainer) -> dict:
    cfg = tr.cfg
    return {
        "base": {"lr": cfg.lr, "init_std": cfg.init_std, "alpha_in": cfg.alpha_in, "alpha_out": cfg.alpha_out,
                 "attn_mult": cfg.attn_mult, "weight_decay": cfg.weight_decay, "betas": list(cfg.betas), "eps": cfg.eps,
                 "base_width": cfg.base_width, "width_mult": width_mult(tr.model),
                 "attention_scale": tr.model.blocks[0].attn.scale,
                 "readout_zero_init": cfg.zero_readout, "query_zero_init": cfg.zero_query,
                 "warmup_steps": cfg.resolved_warmup_steps},
        "groups": _group_records(tr),
    }


def run_record(tr: Trainer, status: str, reason: str | None, config_hash: str, extra: dict | None = None) -> dict:
    """The run.json dict of ``tr`` as it stands (docs/CONTRACTS.md "proxy_train"); ``extra`` is merged in."""
    cfg, data = tr.cfg, tr.data
    shape = tr.model.cfg.shape
    n_model = sum(p.numel() for p in tr.model.parameters())
    assert n_model == shape.total_params, (n_model, shape.total_params)
    tokens = tr.step * cfg.tokens_per_step
    val_last = tr.curve["val"][-1][2] if tr.curve["val"] else None
    rec = {
        "status": status,
        **({"reason": reason} if reason else {}),
        "config_hash": config_hash,
        "run_id": f"{cfg.parameterization}-d{cfg.d_model}-L{cfg.n_layers}-t{tokens}-s{cfg.seed}",
        "total_params": shape.total_params,
        "non_embedding_params": shape.non_embedding_params,
        "tokens": tokens,
        "steps": tr.step,
        "flops": shape.flops_per_token_6n * tokens,
        "flops_6n": shape.flops_per_token_6n * tokens,
        "flops_with_attention": shape.flops_per_token_palm * tokens,
        "flops_with_attention_convention": "palm: 6 N_matmul + 12 L H Q T per token",
        "final_train_loss": tr.last_train_loss,
        "final_val_loss": val_last,
        "loss_units": "nats/token",
        "d_model": cfg.d_model, "n_layers": cfg.n_layers,
        "shape": {**shape.to_dict(), "ffn_rule": SWIGLU_FFN_RULE},
        "curve": {"train": tr.curve["train"], "val": tr.curve["val"], "columns": ["step", "tokens", "loss"]},
        "schedule": cfg.schedule,
        "parameterization": cfg.parameterization,
        "wd_rule": cfg.wd_rule,
        "depth_scaling": {"rule": cfg.depth_scaling, "base_depth": cfg.base_depth or cfg.n_layers,
                          "branch_mult": tr.model.cfg.branch_mult},
        "seed": cfg.seed,
        "hyperparameters": _hyperparameters(tr),
        "config": cfg.to_dict(),
        "wall_time_s": tr.train_time,
        "tokens_per_s": tokens / tr.train_time if tr.train_time > 0 else None,
        "device": str(tr.device),
        "threads": torch.get_num_threads(),
        "versions": versions(),
        "data": {"path": str(data.path), "sha256": data.meta["sha256"], "vocab_size": data.vocab_size},
        "meta": {"scaleplan": __version__, "command": cfg.extra.get("command", "proxy_train.train.train")},
    }
    if extra:
        rec.update(extra)
    return rec
