"""The Plan page's table of μP as the trainer will apply it: per parameter group, μP's target
(``plan.hparams``, planner/width_hparams.py), what the chosen exporter's trainer applies, and the
ratios, with mismatches highlighted (:func:`trainer_table`, :func:`style_trainer_table`; the section
:func:`show_trainer_table`). Every trainer value comes from the exporter's own model of it:
Megatron-LM from :func:`planner.export.megatron_mup.megatron_effective` on the exported arguments,
torchtitan from the export's folded AdamW groups (planner/export/torchtitan.py ``mup_groups``), HF
from config.json (planner/export/hf.py ``hf_config``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from planner.errors import UserError

#: Trainer views of the Plan page: label -> (exporter, Megatron μP mode).
TRAINER_VIEWS: dict[str, tuple[str, str | None]] = {
    "Megatron-LM, native μP (--use-mup)": ("megatron", "native"),
    "Megatron-LM, translated (no --use-mup)": ("megatron", "translate"),
    "torchtitan 0.3.0 (folded, --allow-approximate-mup)": ("torchtitan", None),
    "Hugging Face config.json (Granite forward)": ("hf", None),
}
#: A ratio inside [1/EXACT_TOL, EXACT_TOL] counts as exact; outside [1/REFUSE_LIMIT, REFUSE_LIMIT] it is
#: beyond the exporters' refusal limit (planner/export/megatron.py APPROXIMATE_LIMIT).
EXACT_TOL = 1.001
REFUSE_LIMIT = 2.0
RATIO_COLUMNS = ("update ratio", "init ratio", "decay ratio", "eps ratio", "forward ratio")
#: Ratios first (what to look at), then each quantity as μP prescribes it beside what the trainer applies.
TRAINER_COLUMNS = ("group",) + RATIO_COLUMNS + ("μP lr", "trainer lr", "μP init std", "trainer init std",
                                                "μP mult", "trainer mult", "μP wd", "trainer wd")


@dataclass(frozen=True)
class TrainerTable:
    """A trainer's per-group values against μP (:func:`trainer_table`): ``table`` (None when the
    exporter refuses the plan outright), ``refusal`` (why the export is refused, or refused without
    ``--allow-approximate-mup``) and ``notes`` (what the table cannot show)."""

    trainer: str
    mode: str | None
    table: pd.DataFrame | None
    refusal: str | None
    notes: list[str]


def _ratio(a: float, b: float) -> float:
    """a / b; 1 for 0/0 and inf for x/0 (as planner.export.megatron_mup.compare)."""
    if b == 0:
        return 1.0 if a == 0 else math.inf
    return a / b


def _row(name: str, target, applied) -> dict:
    """One group: μP's and the trainer's GroupValues, and their multiplier-folded ratios
    (planner/export/megatron_mup.py Conventions: update = lr x mult, init = std x mult, decay =
    lr x wd, eps = eps / mult)."""
    return {"group": name, "μP lr": target.lr, "μP init std": target.init_std, "μP mult": target.multiplier,
            "μP wd": target.weight_decay, "trainer lr": applied.lr, "trainer init std": applied.init_std,
            "trainer mult": applied.multiplier, "trainer wd": applied.weight_decay,
            "update ratio": _ratio(applied.update, target.update),
            "init ratio": _ratio(applied.effective_init, target.effective_init),
            "decay ratio": _ratio(applied.decay_per_step, target.decay_per_step),
            "eps ratio": _ratio(applied.effective_eps, target.effective_eps), "forward ratio": math.nan}


def _attention_row(target_scale: float, applied_scale: float, label: str = "attention softmax scale") -> dict:
    row = {c: math.nan for c in TRAINER_COLUMNS}
    row.update({"group": label, "μP mult": target_scale, "trainer mult": applied_scale,
                "forward ratio": _ratio(applied_scale, target_scale)})
    return row


def _megatron_table(plan, mode: str) -> TrainerTable:
    """Megatron-LM: what it derives from the exported arguments (megatron_mup.megatron_effective)."""
    from planner.export.megatron import APPROXIMATE_LIMIT, build_args, render_megatron
    from planner.export.megatron_mup import GROUPS, compare, megatron_effective, mup_target

    try:  # what the exporter refuses even with --allow-approximate-mup (layout, argument rules)
        render_megatron(plan, mup_mode=mode, allow_approximate_mup=True)
    except UserError as e:
        return TrainerTable("megatron", mode, None, str(e), [])
    applied = megatron_effective(build_args(plan, mup_mode=mode))
    target = mup_target(plan.hparams)
    rows = [_row(g, target.groups[g], applied.groups[g]) for g in GROUPS]
    rows.append(_attention_row(target.softmax_scale, applied.softmax_scale))
    check = compare(applied, plan.hparams)
    off = check.decay_off_by_more_than(APPROXIMATE_LIMIT)
    if mode == "translate":
        off = check.off_by_more_than(APPROXIMATE_LIMIT) + off
    refusal = None
    if off:
        refusal = (f"`scaleplan export --trainer megatron --megatron-mup {mode}` refuses this plan without "
                   f"--allow-approximate-mup: {', '.join(off)} (beyond {APPROXIMATE_LIMIT:g}x)")
    notes = list(check.notes)
    notes.append("hidden_out (attention output projection, fc2): Megatron's init std / sqrt(2 x layers)")
    if mode == "native":
        notes.append("native mode divides the hidden Adam eps by width_mult (get_mup_config_overrides)")
    return TrainerTable("megatron", mode, pd.DataFrame(rows, columns=list(TRAINER_COLUMNS)), refusal, notes)


def _torchtitan_table(plan) -> TrainerTable:
    """torchtitan 0.3.0: the export's folded AdamW groups (torchtitan.mup_groups), multiplier 1 in the
    forward; the attention factor rides on the query projection (its kernel scale is 1/sqrt(d_head))."""
    from planner.export.megatron_mup import GroupValues
    from planner.export.torchtitan import mup_groups, mup_residual, render_torchtitan

    try:  # refused even approximately: PP > 1, tied embeddings, or a layout torchtitan cannot run
        render_torchtitan(plan, allow_approximate_mup=True)
    except UserError as e:
        return TrainerTable("torchtitan", None, None, str(e), [])
    hp, eps = plan.hparams, plan.hparams.eps
    folded = mup_groups(plan)
    kernel = plan.shape.head_dim ** -0.5
    c_q = folded["query"]["multiplier"]
    targets = {name: GroupValues(v.lr, v.init_std, v.multiplier, v.weight_decay, eps) for name, v in hp.groups.items()}
    h = hp.hidden
    targets["query"] = GroupValues(h.lr, 0.0 if hp.query_zero_init else h.init_std, c_q, h.weight_decay, eps)
    rows = []
    for name in ("embedding", "query", "hidden", "readout", "norms"):
        g = folded[name]
        rows.append(_row(name, targets[name], GroupValues(g["lr"], g["init_std"], 1.0, g["weight_decay"], g["eps"])))
    rows.append(_attention_row(hp.attention.scale, kernel * c_q, "attention softmax scale (kernel x query fold)"))
    notes = [f"μP's attention factor (attn_mult/d_head) / torchtitan's 1/sqrt(d_head) = {c_q:.4g} is folded into "
             "the query projection (μP mult of the query row)"] + mup_residual(plan)
    refusal = ("`scaleplan export --trainer torchtitan` refuses a μP plan unless --allow-approximate-mup "
               "(torchtitan has no μP; the table is the folded equivalent it then writes)")
    return TrainerTable("torchtitan", None, pd.DataFrame(rows, columns=list(TRAINER_COLUMNS)), refusal, notes)


def _hf_table(plan) -> TrainerTable:
    """Hugging Face: config.json's forward multipliers (hf.hf_config, Granite); no optimizer fields."""
    from planner.export.hf import hf_config

    hp, cfg = plan.hparams, hf_config(plan)
    applied = {"embedding": cfg["embedding_multiplier"], "hidden": cfg["residual_multiplier"],
               "readout": 1.0 / cfg["logits_scaling"], "norms": 1.0}
    rows = []
    for name, v in hp.groups.items():
        row = {c: math.nan for c in TRAINER_COLUMNS}
        row.update({"group": name, "μP lr": v.lr, "μP init std": v.init_std, "μP mult": v.multiplier,
                    "μP wd": v.weight_decay, "trainer mult": applied[name],
                    "forward ratio": _ratio(applied[name], v.multiplier)})
        rows.append(row)
    rows.append(_attention_row(hp.attention.scale, cfg["attention_multiplier"]))
    notes = ["config.json sets the forward only (GraniteForCausalLM: embedding_multiplier, 1/logits_scaling, "
             "attention_multiplier, residual_multiplier 1); learning rates, inits and decay are the training "
             "run's (Megatron-LM or torchtitan)"]
    return TrainerTable("hf", None, pd.DataFrame(rows, columns=list(TRAINER_COLUMNS)), None, notes)


def trainer_table(plan, view: str) -> TrainerTable | None:
    """Per parameter group, μP's LR, init std, multiplier and weight decay (``plan.hparams``) beside
    what the trainer of ``view`` (a :data:`TRAINER_VIEWS` label) applies with the plan's export, and
    the ratios trainer ÷ μP of the multiplier-folded quantities (update = lr x mult, init = std x mult,
    decay = lr x wd per step, eps = eps / mult; Adam trains ``c W`` like ``W`` with these folded, so
    these are what must match), plus the attention softmax scale (``forward ratio``). Megatron's
    values come from :func:`planner.export.megatron_mup.megatron_effective` on the exported arguments,
    torchtitan's from the export's folded groups, HF's from config.json. None for a plan that does
    not apply μP (no hparams, SP, a preset recipe or a given LR)."""
    if plan.hparams is None or not plan.is_mup:
        return None
    trainer, mode = TRAINER_VIEWS[view]
    if trainer == "megatron":
        return _megatron_table(plan, mode)
    return _torchtitan_table(plan) if trainer == "torchtitan" else _hf_table(plan)


def ratio_flag(x: float) -> str:
    """"" (exact: within 0.1%), "off" (outside [0.999, 1.001]) or "refuse" (beyond the 2x limit); NaN: ""."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    if 1 / EXACT_TOL <= x <= EXACT_TOL:
        return ""
    return "refuse" if not 1 / REFUSE_LIMIT <= x <= REFUSE_LIMIT else "off"


_FLAG_CSS = {"": "", "off": "background-color: #fff3cd", "refuse": "background-color: #f8d7da; font-weight: bold"}


def style_trainer_table(df: pd.DataFrame):
    """A pandas Styler of :func:`trainer_table`'s table for display: numbers as text in 4 significant
    digits, blank where not applicable (NaN), ratio cells shaded by :func:`ratio_flag` of the number
    (amber: not exact, red: beyond 2x). The text copy keeps st.dataframe from showing NaN as None."""
    shown = df.map(lambda x: x if isinstance(x, str) else ("" if math.isnan(x) else f"{x:.4g}"))
    css = pd.DataFrame("", index=df.index, columns=df.columns)
    for c in RATIO_COLUMNS:
        if c in df.columns:
            css[c] = [_FLAG_CSS[ratio_flag(x)] for x in df[c]]
    return shown.style.apply(lambda _: css, axis=None)


def show_trainer_table(plan) -> None:
    """The section: a trainer chooser, the styled table, the refusal and the notes."""
    if plan.hparams is None or not plan.is_mup:
        return
    st.markdown("**μP as the trainer applies it** (per group: μP target, trainer, ratio trainer ÷ μP)")
    view = st.selectbox("Trainer", list(TRAINER_VIEWS), key="trainer_view",
                        help="the exporter whose launch files the table models (downloads below)")
    try:
        tt = trainer_table(plan, view)
    except UserError as e:
        st.error(f"Cannot model this trainer for the plan: {e}")
        return
    if tt.table is None:
        st.error(tt.refusal)
        return
    st.dataframe(style_trainer_table(tt.table), hide_index=True)
    flags = {ratio_flag(x) for c in RATIO_COLUMNS for x in tt.table[c]}
    st.caption("Ratios of the multiplier-folded values (update = lr x mult, init = std x mult, decay = lr x wd "
               "per step, eps = eps / mult): amber = not exact (outside [0.999, 1.001]), red = beyond the 2x "
               "refusal limit. " + ("Every ratio is exact." if flags <= {""} else ""))
    if tt.refusal:
        st.warning(tt.refusal)
    for n in tt.notes:
        st.caption(f"Note: {n}")
