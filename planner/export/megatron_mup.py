"""What Megatron-LM applies per parameter group, from its arguments, and how far that is from μP.

:func:`megatron_effective` reads exported ``pretrain_gpt.py`` arguments (flag -> value, as in
``megatron_args.json`` or ``build_args``) and returns, per parameter group, the AdamW LR, init
std, forward multiplier, weight decay and Adam eps Megatron derives, plus the attention softmax
scale. :func:`mup_target` gives the same quantities as μP prescribes (``WidthHParams``, the
proxy's rules), and :func:`compare` their ratios (trainer ÷ μP).

Source: NVIDIA/Megatron-LM at commit d98e8a64ddf34856e74b24714e3bedb2f5a39553 (2026-08-22; the
native μP flags arrived in core_v0.17.0, commit 310082a6d2 "μP: Maximal Update Parameterization"):

* ``megatron/core/transformer/transformer_config.py``, ``TransformerConfig.__post_init__``, μP
  block (only with ``--use-mup``): ``width_mult = hidden_size / mup_base_hidden_size`` (base
  defaults to hidden_size); ``softmax_scale = (sqrt(mup_base_head_dim) if set else 1) /
  kv_channels ** mup_attn_scale_power`` (``softmax_scale`` has no CLI flag, so it is always
  None there); ``mup_output_mult`` is replaced by ``1/width_mult`` **only when it equals 1.0**.
  Init: the embedding uses ``embedding_init_method_std`` (default ``init_method_std``), unscaled;
  ``init_method`` (QKV, fc1) is ``N(0, init_method_std / sqrt(width_mult))`` under μP;
  ``output_layer_init_method`` (attention output projection, fc2) is ``N(0, std / sqrt(2 L))``,
  also ``/ sqrt(width_mult)`` under μP (``megatron/core/utils.py``,
  ``scaled_init_method_normal`` / ``mup_scaled_init_method_normal``).
  Without ``--use-mup`` attention uses the default ``1/sqrt(kv_channels)``. The scale reaches the
  kernel through ``attention.py`` (``softmax_scale=self.config.softmax_scale``); Transformer
  Engine's ``TEDotProductAttention`` (``extensions/transformer_engine.py``) passes it on only
  with TE >= 1.10.
* ``megatron/core/models/gpt/gpt_model.py``, ``GPTModel.__init__``: the output layer's init is
  ``embedding_init_method`` under μP with untied weights, else ``init_method``; tied, it is the
  embedding. ``language_model_embedding.py`` multiplies embeddings by ``mup_embedding_mult``;
  ``LanguageModule._scale_logits`` (language_module.py) multiplies logits by ``mup_output_mult``.
  ``LanguageModule.setup_embeddings_and_output_layer`` tags the embedding and the output layer
  ``is_embedding_parameter`` under μP (both tagged ``is_embedding_or_output_parameter`` always).
* ``megatron/core/optimizer/__init__.py``: ``get_standard_config_overrides`` gives 1-D params and
  biases ``wd_mult = 0`` and ``--decoupled-lr`` to ``is_embedding_or_output_parameter`` params;
  ``get_mup_config_overrides`` (Adam) gives hidden matrix-like params (not embedding/output, dim
  >= 2) ``lr / width_mult``, ``min_lr / width_mult`` and ``eps / width_mult``; vector-like params
  (norms, embedding, output layer) keep the base lr and eps; with ``--decoupled-lr`` the embedding
  and output layer keep the decoupled value. ``--optimizer adam`` is AdamW (decoupled decay).
* Weight decay, same commit: ``--optimizer adam`` builds TE/Apex ``FusedAdam`` with
  ``adam_w_mode = decoupled_weight_decay`` (default True; torch ``AdamW`` without TE/Apex) in
  ``megatron/core/optimizer/__init__.py``, ``_get_megatron_optimizer_based_on_param_groups``: each
  step shrinks a weight by ``lr * wd``, as the proxy's torch AdamW does. ``OptimizerParamScheduler.step``
  (``megatron/core/optimizer_param_scheduler.py``) sets each group's wd to ``--weight-decay x
  wd_mult``; the only ``wd_mult`` overrides reachable from the command line are
  ``get_standard_config_overrides``'s 0 for 1-D params and biases (and ``--apply-wd-to-qk-layernorm``
  for QK-norm gains, which these models lack); ``get_mup_config_overrides`` changes LR and eps,
  never wd. So one ``--weight-decay`` reaches embedding, hidden and output matrices alike, and
  each group's decay per step is its LR times it. The proxy's rule (planner/width_hparams.py:
  ``wd_rule: mup`` gives every matrix the same ``lr * wd``) then needs the embedding and output
  layer at the hidden LR with the difference folded into their multipliers (Adam allows it, see
  Conventions): :func:`native_mup_flags` computes those flags.
* Flag defaults from Megatron's parser (shared/data/megatron/pretrain_gpt_flags.json):
  ``--init-method-std 0.02``, ``--weight-decay 0.01``, ``--adam-eps 1e-8``.

Conventions: groups are ``embedding``, ``hidden`` (QKV, fc1), ``hidden_out`` (attention output
projection and fc2: Megatron's depth-scaled init), ``readout`` (output layer), ``norms``.
Comparisons fold each forward multiplier ``c`` into its weight, which Adam allows (``V = c W``
trains like a weight with init ``c * std``, LR ``c * lr``, eps ``eps / c``; the decay per step
``lr * wd`` is unchanged): *update* = lr x multiplier, *init* = std x multiplier, *decay* =
lr x wd, *eps* = eps / multiplier. A ratio of two zeros is 1; a non-zero over a zero is inf.
Biases (an architecture option, planner/export/architecture.py; Megatron gives them the base LR and no
weight decay) are not modelled per group.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from planner.errors import UserError
from planner.width_hparams import WidthHParams

MEGATRON_COMMIT = "d98e8a64ddf34856e74b24714e3bedb2f5a39553"
GROUPS = ("embedding", "hidden", "hidden_out", "readout", "norms")
#: Parser defaults (pretrain_gpt_flags.json) of the flags read here.
_DEFAULTS = {"--init-method-std": 0.02, "--weight-decay": 0.01, "--adam-eps": 1e-8, "--mup-embedding-mult": 1.0,
             "--mup-output-mult": 1.0, "--mup-attn-scale-power": 1.0}


@dataclass(frozen=True)
class GroupValues:
    """AdamW LR, init std, forward multiplier, weight decay and eps of one parameter group."""

    lr: float
    init_std: float
    multiplier: float
    weight_decay: float
    eps: float

    @property
    def update(self) -> float:
        """Adam's update size of the multiplier-folded weight: lr x multiplier."""
        return self.lr * self.multiplier

    @property
    def effective_init(self) -> float:
        return self.init_std * self.multiplier

    @property
    def decay_per_step(self) -> float:
        """AdamW's relative shrink per step, lr x wd (unchanged by folding a multiplier)."""
        return self.lr * self.weight_decay

    @property
    def effective_eps(self) -> float:
        return self.eps / self.multiplier


@dataclass(frozen=True)
class TrainerValues:
    """Per-group values (``GROUPS``) and the attention softmax scale one trainer setting applies."""

    mode: str  # native (--use-mup) | translate (SP flags) | mup (the μP prescription)
    groups: dict[str, GroupValues]
    softmax_scale: float
    width_mult: float


class _Args:
    """Typed access to flag -> value (numbers, strings as Megatron parses them, True for switches)."""

    def __init__(self, args: dict[str, Any] | list[tuple[str, Any]]):
        self.d = dict(args)

    def switch(self, flag: str) -> bool:
        v = self.d.get(flag)
        return v is True or str(v).lower() == "true"

    def num(self, flag: str, default: Any = "required") -> Any:
        v = self.d.get(flag)
        if v is None:
            if default == "required":
                raise UserError(f"Megatron arguments lack {flag}; export the plan again")
            return _DEFAULTS.get(flag) if default == "parser" else default
        try:
            return float(v)
        except (TypeError, ValueError):
            raise UserError(f"Megatron argument {flag} must be a number, got {v!r}") from None

    def positive(self, flag: str, default: Any = "required") -> float:
        v = self.num(flag, default)
        if not v > 0:
            raise UserError(f"Megatron argument {flag} must be positive, got {v:g}")
        return v


def _native_config(a: _Args, hidden: float, kv: float) -> tuple[float, float, float, float]:
    """(width_mult, embedding mult, output mult, softmax scale) of TransformerConfig.__post_init__'s μP block."""
    m = hidden / a.positive("--mup-base-hidden-size", hidden)
    base_head_dim = a.positive("--mup-base-head-dim") if "--mup-base-head-dim" in a.d else None
    scale = (1.0 if base_head_dim is None else base_head_dim ** 0.5) / kv ** a.num("--mup-attn-scale-power", "parser")
    out_mult = a.num("--mup-output-mult", "parser")
    if out_mult == 1.0 and m != 1.0:  # Megatron's auto rule: only an exact 1.0 becomes 1/width_mult
        out_mult = 1.0 / m
    return m, a.num("--mup-embedding-mult", "parser"), out_mult, scale


def megatron_effective(args: dict[str, Any] | list[tuple[str, Any]]) -> TrainerValues:
    """What Megatron applies per group for these ``pretrain_gpt.py`` arguments (module docstring)."""
    a = _Args(args)
    if str(a.d.get("--optimizer", "adam")) != "adam":
        raise UserError(f"only Megatron's adam (AdamW) is modelled, got --optimizer {a.d['--optimizer']}")
    h, n_layers, heads = (a.positive(f) for f in ("--hidden-size", "--num-layers", "--num-attention-heads"))
    kv = a.positive("--kv-channels", float(int(h) // int(heads)))  # arguments.py validate_args: hidden // heads
    native = a.switch("--use-mup")
    if native:
        m, emb_mult, out_mult, scale = _native_config(a, h, kv)
    else:
        m, emb_mult, out_mult, scale = 1.0, 1.0, 1.0, 1.0 / math.sqrt(kv)
    if str(a.d.get("--weight-decay-incr-style", "constant")) != "constant":
        raise UserError("only a constant --weight-decay is modelled, got --weight-decay-incr-style "
                        f"{a.d['--weight-decay-incr-style']}")
    lr, std = a.num("--lr"), a.num("--init-method-std", "parser")
    emb_std = a.num("--embedding-init-method-std", std)
    wd, eps = a.num("--weight-decay", "parser"), a.num("--adam-eps", "parser")
    emb_lr = a.num("--decoupled-lr", lr)
    hidden_std = std / math.sqrt(m)  # m = 1 without --use-mup
    embedding = GroupValues(emb_lr, emb_std, emb_mult, wd, eps)
    if a.switch("--untie-embeddings-and-output-weights"):
        readout = GroupValues(emb_lr, emb_std if native else std, out_mult, wd, eps)
    else:  # tied: the output layer is the embedding matrix
        readout = GroupValues(emb_lr, emb_std, out_mult, wd, eps)
    groups = {
        "embedding": embedding,
        "hidden": GroupValues(lr / m, hidden_std, 1.0, wd, eps / m),
        "hidden_out": GroupValues(lr / m, hidden_std / math.sqrt(2.0 * n_layers), 1.0, wd, eps / m),
        "readout": readout,
        "norms": GroupValues(lr, 1.0, 1.0, 0.0, eps),
    }
    return TrainerValues("native" if native else "translate", groups, scale, m)


def mup_target(width: WidthHParams) -> TrainerValues:
    """The μP prescription (``HParams.at_width``) in the same groups; ``hidden_out`` is ``hidden``."""
    g = {name: GroupValues(v.lr, v.init_std, v.multiplier, v.weight_decay, width.eps)
         for name, v in width.groups.items()}
    g["hidden_out"] = g["hidden"]
    return TrainerValues("mup", {name: g[name] for name in GROUPS}, width.attention.scale, width.m_d)


def _ratio(a: float, b: float) -> float:
    if b == 0:
        return 1.0 if a == 0 else math.inf
    return a / b


@dataclass(frozen=True)
class GroupRatios:
    """trainer ÷ μP for one group (multiplier-folded, module docstring)."""

    update: float
    init: float
    multiplier: float
    decay: float
    eps: float


@dataclass(frozen=True)
class MupCheck:
    """Per-group ratios trainer ÷ μP, the attention-scale ratio, and what no flag can express."""

    trainer: TrainerValues
    target: TrainerValues
    groups: dict[str, GroupRatios]
    attention: float
    notes: list[str] = field(default_factory=list)
    decay_rule: str = "none"  # WidthHParams.decay_rule of the target: none | uniform | unscaled | custom

    def off_by_more_than(self, factor: float) -> list[str]:
        """Update sizes and the attention scale outside [1/factor, factor] ("readout update x4.33").

        These carry the tuned LR and attention multiplier; init, decay and eps are reported only
        (Megatron's depth-scaled output-projection init is the same in both modes; WD is a rule
        of its own).
        """
        out = [f"{name} update x{r.update:.3g}" for name, r in self.groups.items()
               if not 1 / factor <= r.update <= factor]
        if not 1 / factor <= self.attention <= factor:
            out.append(f"attention softmax scale x{self.attention:.3g}")
        return out

    def decay_off_by_more_than(self, factor: float) -> list[str]:
        """Groups whose weight decay per step is outside [1/factor, factor] of the proxy rule's
        ("embedding decay x56"); a decay where the proxy has none is "x inf"."""
        return [f"{name} decay x{r.decay:.3g}" for name, r in self.groups.items()
                if not 1 / factor <= r.decay <= factor]

    def decay_lines(self, limit: float = 2.0) -> list[str]:
        """The weight-decay statement of the header: the proxy's rule and each group's ratio."""
        if self.decay_rule == "none" and all(v.decay_per_step == 0 for v in self.trainer.groups.values()):
            return []
        out = [f"weight decay per step (lr*wd; AdamW in the proxy and in Megatron), proxy rule: "
               f"{_DECAY_RULES.get(self.decay_rule, self.decay_rule)};",
               "  trainer / proxy: " + ", ".join(f"{n} x{r.decay:.4g}" for n, r in self.groups.items())]
        off = self.decay_off_by_more_than(limit)
        if off:
            out.append(f"  beyond {limit:g}x: {', '.join(off)} (one --weight-decay reaches every matrix at its "
                       "own LR; planner.export.megatron_mup.native_mup_flags matches every group)")
        return out

    def lines(self) -> list[str]:
        """The table for a launch script's header (without the comment sign)."""
        t = self.trainer
        how = f"width_mult {t.width_mult:.6g}" if t.mode == "native" else "no --use-mup"
        out = [f"per group, as Megatron applies it ({t.mode} mode, {how}) and the ratio",
               "trainer / μP (multiplier folded into the weight, as Adam allows: update = lr*mult,",
               "init = std*mult, decay = lr*wd per step, eps = eps/mult):",
               f"  {'group':<11}{'lr':>11}{'init std':>11}{'mult':>10}{'wd':>8}"
               f"{'update':>9}{'init':>9}{'mult':>9}{'decay':>9}{'eps':>9}"]
        for name, r in self.groups.items():
            v = t.groups[name]
            out.append(f"  {name:<11}{v.lr:>11.4g}{v.init_std:>11.4g}{v.multiplier:>10.4g}{v.weight_decay:>8.3g}"
                       + "".join(f"{x:>9.4g}" for x in (r.update, r.init, r.multiplier, r.decay, r.eps)))
        out.append(f"  attention softmax scale {t.softmax_scale:.6g} vs μP {self.target.softmax_scale:.6g}"
                   f" (ratio {self.attention:.4g})")
        return out + self.decay_lines() + [f"  note: {n}" for n in self.notes]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (a ratio of a non-zero over a zero is the string "inf")."""
        def num(x: float) -> float | str:
            return "inf" if math.isinf(x) else x

        out = {"mode": self.trainer.mode, "attention_ratio": num(self.attention),
               "groups": {k: {f: num(x) for f, x in vars(r).items()} for k, r in self.groups.items()},
               "notes": list(self.notes)}
        if self.decay_rule != "none":  # absent without decay, as in exports made before it existed
            out["decay_rule"] = self.decay_rule
        return out


def compare(trainer: TrainerValues, width: WidthHParams) -> MupCheck:
    """Ratios trainer ÷ μP per group (folded quantities, module docstring) and what stays unexpressed."""
    target = mup_target(width)
    groups = {}
    for name in GROUPS:
        a, b = trainer.groups[name], target.groups[name]
        groups[name] = GroupRatios(update=_ratio(a.update, b.update), init=_ratio(a.effective_init, b.effective_init),
                                   multiplier=_ratio(a.multiplier, b.multiplier),
                                   decay=_ratio(a.decay_per_step, b.decay_per_step),
                                   eps=_ratio(a.effective_eps, b.effective_eps))
    notes = []
    if width.readout_zero_init:
        notes.append("μP zero-initialises the readout; Megatron has no such option (init ratio inf)")
    if width.query_zero_init:
        notes.append("μP zero-initialises the query projection; Megatron's fused linear_qkv draws it "
                     "with the hidden std")
    return MupCheck(trainer, target, groups, _ratio(trainer.softmax_scale, target.softmax_scale), notes,
                    width.decay_rule)


#: How the header names each WidthHParams.decay_rule (planner/width_hparams.py has the sources).
_DECAY_RULES = {
    "none": "none (wd 0)",
    "uniform": "the same lr*wd in every matrix group at every width (wd_rule mup: MuAdamW's hidden wd x m_d; "
               "Dey et al. 2025 Table 1)",
    "unscaled": "hidden lr*wd = the embedding's / m_d (wd_rule unscaled: wd not scaled)",
    "custom": "the plan's per-group values (edited)",
}


def native_mup_flags(width: WidthHParams, head_dim: int, *, lr_scale: float = 1.0,
                     min_lr_ratio: float = 0.1) -> list[tuple[str, Any]]:
    """``--use-mup`` flags under which Megatron applies every group's μP update, init, multiplier and
    per-step weight decay (module docstring), for a run at ``lr_scale`` x the plan's peak LR.

    Hidden: ``--lr`` = hidden LR x m_d and ``--weight-decay`` = the hidden wd, so the hidden decay is
    the proxy's. Embedding and output layer share one LR (``--decoupled-lr``) whose decay, that LR x
    ``--weight-decay``, must equal their μP decay: LR = their decay / hidden wd (= the hidden LR under
    ``wd_rule: mup``; the base LR under ``unscaled`` or without decay, when no ``--decoupled-lr`` is
    needed). Their multipliers then carry the rest of the μP update (``mult = μP lr x mult / LR``) and
    the embedding std the rest of the init (``std x mult`` kept). Megatron replaces an output
    multiplier of exactly 1.0 by 1/width_mult, so 1.0 is passed one ulp above. Values are floats.
    With the folded multipliers the embedding and output layer's effective Adam eps is eps / m_d,
    as Megatron already makes it for hidden matrices (:func:`compare` reports it).
    """
    if not width.is_mup:
        raise UserError("native μP flags need μP hparams; this plan's hparams are SP")
    emb, hidden, out, m = width.embedding, width.hidden, width.readout, width.m_d
    base_lr, wd = hidden.lr * m * lr_scale, hidden.weight_decay
    shared_lr = emb.lr * lr_scale
    if wd > 0 and emb.decay_per_step > 0:
        shared_lr = emb.decay_per_step * lr_scale / wd
    emb_mult = emb.lr * emb.multiplier * lr_scale / shared_lr
    out_mult = out.lr * out.multiplier * lr_scale / shared_lr
    if out_mult == 1.0 and m != 1.0:
        out_mult = math.nextafter(1.0, 2.0)
    attn_mult = width.attention.scale * head_dim
    flags: list[tuple[str, Any]] = [
        ("--use-mup", True), ("--mup-base-hidden-size", width.base_width), ("--mup-embedding-mult", emb_mult),
        ("--mup-output-mult", out_mult), ("--mup-base-head-dim", attn_mult ** 2), ("--mup-attn-scale-power", 1.0),
        ("--init-method-std", hidden.init_std * math.sqrt(m)),
        ("--embedding-init-method-std", emb.init_std * emb.multiplier / emb_mult),
        ("--lr", base_lr), ("--min-lr", base_lr * min_lr_ratio), ("--weight-decay", wd)]
    if not math.isclose(shared_lr, base_lr, rel_tol=1e-12):
        flags += [("--decoupled-lr", shared_lr), ("--decoupled-min-lr", shared_lr * min_lr_ratio)]
    return flags


__all__ = ["GroupValues", "TrainerValues", "GroupRatios", "MupCheck", "megatron_effective", "mup_target",
           "compare", "native_mup_flags", "GROUPS", "MEGATRON_COMMIT"]
