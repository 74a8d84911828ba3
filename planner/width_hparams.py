"""Per-parameter-group hyperparameters at a target width: the μP transfer of tuned base values.

``HParams.at_width(d_model)`` (planner/hparams.py) returns a :class:`WidthHParams`; this module
holds the transfer rules and the type. Rules from Yang et al. 2022, "Tensor Programs V", Table 8
as implemented by the PyPI ``mup`` package, and the μP column of Dey et al. 2025 "CompleteP"
Table 1 (summarised in shared/notes/mup-and-sweeps.md §0 and §2).

Conventions:

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
* Weight decay means the per-step decay ``lr * wd`` (:attr:`GroupHParams.decay_per_step`): the
  proxy's torch AdamW shrinks each decayed weight by ``lr(t) * wd`` per step, and so does
  Megatron's Adam in AdamW mode. The proxy (proxy_train/optim.py) decays embedding, hidden and
  readout matrices, never norm gains, and ``wd_rule`` decides the hidden matrices:

  - ``mup`` (the default): PyPI ``mup`` 1.0.0's MuAdamW divides their LR by m_d and multiplies
    their wd by m_d (``mup/optim.py``, ``MuAdam``), so every decayed group loses the same fraction
    ``lr * wd`` per step at every width: width-independent decay. This is the μP column of Dey et
    al. 2025 ("CompleteP", arXiv:2505.01618, Table 1: hidden AdamW WD ``lambda_base * m_N``), what
    keeping AdamW's EMA timescale ``1/(lr * wd)`` fixed gives under μP's LR rule (Wang &
    Aitchison 2024, arXiv:2405.13698), and the "independent weight decay" variant Kosson et al.
    2025 (arXiv:2510.19093) find μP needs for LR transfer. It is independent of width only:
    Wortsman et al. 2024 (arXiv:2309.14322, §3.2.2 "Independent weight decay") also decouple the
    decay from the peak LR, which the proxy does not (its decay still scales with the base LR).
  - ``unscaled`` (nanoGPT-mup): wd unchanged, so the hidden decay per step is ``lr * wd / m_d``.
* SP hyperparameters have no transfer rule: the values are the same at every width, with a warning
  (SP's optimal LR drifts roughly like 1/width; TP V Fig. 1).
* LRs are AdamW peak learning rates; init stds are standard deviations of a normal init.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from planner.errors import UserError

#: Parameter groups, in the order plan.yaml lists them.
GROUPS = ("embedding", "hidden", "readout", "norms")


@dataclass(frozen=True)
class GroupHParams:
    """AdamW LR, init std, weight decay and forward multiplier of one parameter group."""

    lr: float
    init_std: float
    weight_decay: float
    multiplier: float

    @property
    def decay_per_step(self) -> float:
        """AdamW's relative shrink per step at the peak LR: lr x weight_decay (module docstring)."""
        return self.lr * self.weight_decay

    def to_dict(self) -> dict[str, Any]:
        return {"lr": self.lr, "init_std": self.init_std, "weight_decay": self.weight_decay,
                "multiplier": self.multiplier}


@dataclass(frozen=True)
class AttentionScale:
    """The factor on q.k in the attention logits and the rule that gave it."""

    scale: float
    rule: str  # "attn_mult/d_head" (μP) | "1/sqrt(d_head)" (SP)


@dataclass(frozen=True)
class WidthHParams:
    """Hyperparameters of each parameter group at width ``d_model`` (see the module docstring)."""

    parameterization: str  # mup | sp
    m_d: float
    d_model: int
    base_width: int
    embedding: GroupHParams
    hidden: GroupHParams
    readout: GroupHParams
    norms: GroupHParams
    attention: AttentionScale
    query_zero_init: bool
    readout_zero_init: bool
    betas: tuple[float, float]
    eps: float
    warmup_frac: float
    warnings: list[str] = field(default_factory=list)
    #: The training-horizon LR correction (planner/horizon.py): applied or not and why; None when
    #: never considered (a WidthHParams made outside a plan).
    horizon: dict[str, Any] | None = None

    @property
    def is_mup(self) -> bool:
        return self.parameterization == "mup"

    @property
    def groups(self) -> dict[str, GroupHParams]:
        return {name: getattr(self, name) for name in GROUPS}

    @property
    def decay_rule(self) -> str:
        """The weight-decay rule the per-group values follow (module docstring), read off the values:
        ``none`` (no decay), ``uniform`` (the same ``lr * wd`` in every decayed group: ``wd_rule:
        mup``, and SP; at m_d = 1 both rules give it), ``unscaled`` (hidden ``lr * wd`` = the
        embedding's / m_d) or ``custom`` (values edited by hand)."""
        emb, hidden = self.embedding.decay_per_step, self.hidden.decay_per_step
        if emb == hidden == self.readout.decay_per_step == 0:
            return "none"
        if math.isclose(hidden, emb, rel_tol=1e-9) and math.isclose(self.readout.decay_per_step, emb, rel_tol=1e-9):
            return "uniform"
        if math.isclose(hidden * self.m_d, emb, rel_tol=1e-9):
            return "unscaled"
        return "custom"

    def to_dict(self) -> dict[str, Any]:
        return {"parameterization": self.parameterization, "m_d": self.m_d, "d_model": self.d_model,
                "base_width": self.base_width, "groups": {k: g.to_dict() for k, g in self.groups.items()},
                "attention": {"scale": self.attention.scale, "rule": self.attention.rule},
                "query_zero_init": self.query_zero_init, "readout_zero_init": self.readout_zero_init,
                "betas": list(self.betas), "eps": self.eps, "warmup_frac": self.warmup_frac,
                "warnings": list(self.warnings), **({"horizon": self.horizon} if self.horizon is not None else {})}

    def with_lr_factor(self, factor: float, horizon: dict[str, Any]) -> "WidthHParams":
        """The same values with every group's LR multiplied by ``factor`` (the base LR scaled, so the
        μP ratios between groups stay), recording ``horizon`` (why)."""
        scaled = {name: replace(g, lr=g.lr * factor) for name, g in self.groups.items()}
        return replace(self, **scaled, horizon=horizon)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "WidthHParams":
        try:
            groups = {name: GroupHParams(**d["groups"][name]) for name in GROUPS}
            return cls(parameterization=d["parameterization"], m_d=d["m_d"], d_model=d["d_model"],
                       base_width=d["base_width"], **groups, attention=AttentionScale(**d["attention"]),
                       query_zero_init=d["query_zero_init"], readout_zero_init=d["readout_zero_init"],
                       betas=tuple(d["betas"]), eps=d["eps"], warmup_frac=d["warmup_frac"],
                       warnings=list(d.get("warnings") or []), horizon=d.get("horizon"))
        except (KeyError, TypeError) as e:
            raise UserError(f"the plan's hparams section is incomplete or malformed ({e}); regenerate the plan "
                            "with `scaleplan plan --hparams`") from None


def transfer_to_width(hp, d_model: int, n_layers: int | None = None, head_dim: int | None = None) -> WidthHParams:
    """Per-group values of the base hyperparameters ``hp`` (a planner.hparams.HParams) at ``d_model``.

    ``head_dim`` defaults to ``hp.base_head_dim`` (or 128) for the attention scale; ``n_layers``
    only feeds the depth-transfer warning.
    """
    if not isinstance(d_model, int) or d_model <= 0:
        raise UserError(f"d_model must be a positive integer, got {d_model!r}")
    m = hp.width_mult(d_model)
    dh = head_dim or hp.base_head_dim or 128
    warnings: list[str] = []
    if hp.base_depth and n_layers and n_layers != hp.base_depth:
        warnings.append(
            f"depth {n_layers} differs from the proxy depth {hp.base_depth}: width-only μP has no "
            "depth transfer rule (TP V §6.1 found it only empirical); expect a small LR shift")
    if hp.parameterization == "sp":
        if m != 1:
            warnings.append(
                f"SP hyperparameters tuned at width {hp.base_width} used at width {d_model}: SP has no "
                "transfer guarantee (its optimal LR shrinks roughly like 1/width, TP V Fig. 1); values "
                "are passed through unchanged")
        groups, attention = _sp_groups(hp), AttentionScale(1.0 / math.sqrt(dh), "1/sqrt(d_head)")
    else:
        groups, attention = _mup_groups(hp, m), AttentionScale(hp.attn_mult / dh, "attn_mult/d_head")
    mup = hp.parameterization == "mup"
    return WidthHParams(parameterization=hp.parameterization, m_d=m, d_model=d_model, base_width=hp.base_width,
                        **groups, attention=attention, query_zero_init=mup and hp.query_zero_init,
                        readout_zero_init=mup and hp.readout_zero_init, betas=tuple(hp.betas), eps=hp.eps,
                        warmup_frac=hp.warmup_frac, warnings=warnings)


def _norms(hp) -> GroupHParams:
    return GroupHParams(lr=hp.lr, init_std=1.0, weight_decay=0.0, multiplier=1.0)


def _sp_groups(hp) -> dict[str, GroupHParams]:
    same = GroupHParams(lr=hp.lr, init_std=hp.init_std, weight_decay=hp.weight_decay, multiplier=1.0)
    return {"embedding": same, "hidden": same, "readout": same, "norms": _norms(hp)}


def _mup_groups(hp, m: float) -> dict[str, GroupHParams]:
    """The μP table of the module docstring at width multiplier ``m``."""
    hidden_wd = hp.weight_decay * m if hp.wd_rule == "mup" else hp.weight_decay
    return {
        "embedding": GroupHParams(lr=hp.lr, init_std=hp.init_std, weight_decay=hp.weight_decay,
                                  multiplier=hp.alpha_in),
        "hidden": GroupHParams(lr=hp.lr / m, init_std=hp.init_std / math.sqrt(m), weight_decay=hidden_wd,
                               multiplier=1.0),
        "readout": GroupHParams(lr=hp.lr, init_std=0.0 if hp.readout_zero_init else hp.init_std,
                                weight_decay=hp.weight_decay, multiplier=hp.alpha_out / m),
        "norms": _norms(hp),
    }


__all__ = ["WidthHParams", "GroupHParams", "AttentionScale", "GROUPS", "transfer_to_width"]
