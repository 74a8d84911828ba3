"""HParams: tuned base hyperparameters (hparams.yaml) and their μP transfer to a target width.

Conventions (docs/CONTRACTS.md "hparams.yaml"; rules from Yang et al. 2022, "Tensor Programs V",
Table 8 as implemented by the PyPI ``mup`` package, and the μP column of Dey et al. 2025
"CompleteP" Table 1; summarised in shared/notes/mup-and-sweeps.md §0 and §2):

* ``m_d = d_model / base_width`` is the width multiplier.
* μP, AdamW, per parameter group at width ``d_model``:

  ========== ================= ====================== ============================ =================
  group      init std          AdamW LR               forward multiplier           weight decay
  ========== ================= ====================== ============================ =================
  embedding  init_std          lr                     alpha_in                     wd
  hidden     init_std/sqrt(m)  lr / m                 1                            wd*m (wd_rule mup)
  readout    init_std (or 0)   lr                     alpha_out / m                wd
  norms      1 (gain)          lr                     1                            0
  ========== ================= ====================== ============================ =================

  Attention logits are ``attn_mult * q.k / d_head`` (μP) instead of ``q.k / sqrt(d_head)`` (SP).
  ``wd_rule: mup`` is MuAdamW's rule (weight decay times m_d on hidden matrices so that the
  per-step decay lr*wd of torch's AdamW is width-invariant); ``unscaled`` keeps wd as is.
* SP hyperparameters have no transfer rule: ``at_width`` returns the same values at every width
  and adds a warning (SP's optimal LR drifts roughly like 1/width; TP V Fig. 1).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planner.errors import UserError
from planner.io import read_yaml, write_yaml

PARAMETERIZATIONS = ("mup", "sp")
WD_RULES = ("mup", "unscaled")


@dataclass
class HParams:
    """Base hyperparameters tuned on a proxy of width ``base_width`` (the hparams.yaml contents)."""

    parameterization: str = "mup"
    base_width: int = 128
    base_depth: int | None = None
    base_head_dim: int | None = None
    lr: float = 3e-3
    init_std: float = 0.02
    alpha_in: float = 1.0
    alpha_out: float = 1.0
    attn_mult: float = 1.0
    warmup_frac: float = 0.05
    weight_decay: float = 0.0
    wd_rule: str = "mup"
    readout_zero_init: bool = True
    query_zero_init: bool = True
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    source: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.parameterization not in PARAMETERIZATIONS:
            raise UserError(
                f"unknown parameterization {self.parameterization!r} in hparams; use one of {PARAMETERIZATIONS}"
            )
        if self.wd_rule not in WD_RULES:
            raise UserError(f"unknown wd_rule {self.wd_rule!r} in hparams; use one of {WD_RULES}")
        if not isinstance(self.base_width, int) or isinstance(self.base_width, bool) or self.base_width <= 0:
            raise UserError(f"base_width must be a positive integer (the proxy's d_model), got {self.base_width!r}")
        for name in ("lr", "init_std", "alpha_in", "alpha_out", "attn_mult", "eps"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v <= 0:
                raise UserError(f"hparams {name} must be a positive number, got {v!r}; fix the hparams file")
        for name in ("warmup_frac", "weight_decay"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise UserError(f"hparams {name} must be a number >= 0, got {v!r}; fix the hparams file")
        if self.warmup_frac >= 1:
            raise UserError(f"warmup_frac must be below 1 (a fraction of the run), got {self.warmup_frac}")
        betas = tuple(self.betas) if isinstance(self.betas, (list, tuple)) else ()
        if len(betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas):
            raise UserError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        self.betas = (float(betas[0]), float(betas[1]))

    # ------------------------------------------------------------------ file format
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "HParams":
        if not isinstance(d, dict):
            raise UserError(f"hparams must be a mapping, got {type(d).__name__}; pass an hparams.yaml")
        if "base_width" not in d:
            raise UserError("hparams lacks base_width (the proxy's d_model the values were tuned at); add it")
        known = {f.name for f in dataclasses.fields(cls)}
        # `scaleplan sweep export` also writes provenance keys: vocab_size (checked by the proxy
        # trainer against the data) and meta; the planner does not use them.
        d = {k: v for k, v in d.items() if k not in ("vocab_size", "meta")}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UserError(f"unknown hparams fields {unknown}; known fields: {sorted(known)}")
        return cls(**d)

    @classmethod
    def read(cls, path: str | Path) -> "HParams":
        return cls.from_dict(read_yaml(path, "hparams file"))

    def write(self, path: str | Path) -> Path:
        return write_yaml(path, self.to_dict())

    # ------------------------------------------------------------------ transfer
    def width_mult(self, d_model: int) -> float:
        return d_model / self.base_width

    def at_width(self, d_model: int, n_layers: int | None = None, head_dim: int | None = None) -> dict[str, Any]:
        """Per-group values at width ``d_model`` (see the module docstring for the rules).

        Returns ``{"m_d", "parameterization", "groups": {embedding, hidden, readout, norms: {lr,
        init_std, weight_decay, multiplier}}, "attention": {"scale", "rule"}, "warnings": [...]}``.
        ``head_dim`` defaults to ``base_head_dim`` (or 128) for the attention scale.
        """
        if not isinstance(d_model, int) or d_model <= 0:
            raise UserError(f"d_model must be a positive integer, got {d_model!r}")
        m = self.width_mult(d_model)
        dh = head_dim or self.base_head_dim or 128
        warnings: list[str] = []
        if self.base_depth and n_layers and n_layers != self.base_depth:
            warnings.append(
                f"depth {n_layers} differs from the proxy depth {self.base_depth}: width-only μP has no "
                "depth transfer rule (TP V §6.1 found it only empirical); expect a small LR shift"
            )
        if self.parameterization == "sp":
            if m != 1:
                warnings.append(
                    f"SP hyperparameters tuned at width {self.base_width} used at width {d_model}: SP has no "
                    "transfer guarantee (its optimal LR shrinks roughly like 1/width, TP V Fig. 1); values "
                    "are passed through unchanged"
                )
            same = {"lr": self.lr, "init_std": self.init_std, "weight_decay": self.weight_decay, "multiplier": 1.0}
            groups = {
                "embedding": dict(same),
                "hidden": dict(same),
                "readout": dict(same),
                "norms": {"lr": self.lr, "init_std": 1.0, "weight_decay": 0.0, "multiplier": 1.0},
            }
            attention = {"scale": 1.0 / math.sqrt(dh), "rule": "1/sqrt(d_head)"}
        else:
            hidden_wd = self.weight_decay * m if self.wd_rule == "mup" else self.weight_decay
            groups = {
                "embedding": {"lr": self.lr, "init_std": self.init_std, "weight_decay": self.weight_decay,
                              "multiplier": self.alpha_in},
                "hidden": {"lr": self.lr / m, "init_std": self.init_std / math.sqrt(m), "weight_decay": hidden_wd,
                           "multiplier": 1.0},
                "readout": {"lr": self.lr, "init_std": 0.0 if self.readout_zero_init else self.init_std,
                            "weight_decay": self.weight_decay, "multiplier": self.alpha_out / m},
                "norms": {"lr": self.lr, "init_std": 1.0, "weight_decay": 0.0, "multiplier": 1.0},
            }
            attention = {"scale": self.attn_mult / dh, "rule": "attn_mult/d_head"}
        return {
            "parameterization": self.parameterization,
            "m_d": m,
            "d_model": d_model,
            "base_width": self.base_width,
            "groups": groups,
            "attention": attention,
            "query_zero_init": self.parameterization == "mup" and self.query_zero_init,
            "readout_zero_init": self.parameterization == "mup" and self.readout_zero_init,
            "betas": list(self.betas),
            "eps": self.eps,
            "warmup_frac": self.warmup_frac,
            "warnings": warnings,
        }


def load_hparams(spec: "HParams | str | Path | dict | None") -> HParams | None:
    """Accept an HParams, a dict, a path to hparams.yaml, or None."""
    if spec is None or isinstance(spec, HParams):
        return spec
    if isinstance(spec, dict):
        return HParams.from_dict(spec)
    return HParams.read(spec)
