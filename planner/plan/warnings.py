"""The plan's warnings: each function returns the sentences one check adds, "what; what to do".

Thresholds and their sources:

* ``EXTRAPOLATION_WARN_FACTOR`` = 100: a fitted law is trusted this far (in N and in D) beyond its
  largest run before the plan warns (our heuristic: two decades).
* A fit with a backtest (``law.meta["backtest"]``, :meth:`planner.backtest.Backtest.summary`): the
  plan states its extrapolation factor, 6·N*·D* / the largest fitted compute (C = 6 N D in the
  fit's N), and the backtest's error measured in the factor bin holding it (or the nearest bin).
* Tokens per parameter below 10 or above 200: Hoffmann et al. 2022's optimum is ~20; above it only
  inference cost justifies the ratio (Sardana et al. 2024).
* Batch more than 4x DeepSeek LLM's B_opt (planner.batch_lr.BATCH_WARN_FACTOR's reasoning).
* More than 4 epochs of repeated data (Muennighoff et al. 2023: up to ~4 are almost as good as
  unique data).
* μP hidden LR more than 10x from DeepSeek's eta_opt: a sign the proxy sweep went wrong.
"""
from __future__ import annotations

import math

from planner.hardware import DEFAULT_PRICE_PER_GPU_HOUR

EXTRAPOLATION_WARN_FACTOR = 100.0
MAX_GOOD_EPOCHS = 4.0
MUP_DEEPSEEK_FACTOR = 10.0


def law_warnings(law, allocation) -> list[str]:
    """Carry a fitted law's own warnings into the plan, and flag far extrapolation beyond its runs."""
    meta = getattr(law, "meta", None) or {}
    out = [f"law: {w}" for w in meta.get("warnings", []) or []]
    for key, label in (("n_range", "N"), ("d_range", "D")):
        rng = meta.get(key)
        val = getattr(allocation, label)
        if not rng or not val:
            continue
        ratio = float(val) / float(rng[1])
        if ratio > EXTRAPOLATION_WARN_FACTOR:
            out.append(f"{label}* = {float(val):.3g} is {ratio:.3g}x the largest {label} the law was fitted on "
                       f"({float(rng[1]):.3g}): a {math.log10(ratio):.1f}-decade extrapolation; check the fit's held-out "
                       "error, or plan with a published law (--law besiroglu2024)")
    line = backtest_warning(meta.get("backtest"), allocation)
    return out + ([line] if line else [])


def backtest_warning(summary, allocation) -> str | None:
    """The extrapolation factor the plan relies on and the backtest error measured nearest it."""
    if not isinstance(summary, dict) or not summary.get("curve") or not summary.get("law_max_fitted_flops"):
        return None
    N, D = getattr(allocation, "N", None), getattr(allocation, "D", None)
    if not N or not D:
        return None
    c_fit = float(summary["law_max_fitted_flops"])
    factor = 6.0 * float(N) * float(D) / c_fit
    curve = summary["curve"]
    inside = [b for b in curve if b["lo"] <= factor and (b["hi"] is None or factor < b["hi"])]
    b = inside[0] if inside else min(curve, key=lambda b: abs(math.log(factor / b["median_factor"])))
    span = f"{b['lo']:g}-{b['hi']:g}x" if b["hi"] is not None else f">= {b['lo']:g}x"
    text = (f"extrapolation: 6·N*·D* = {6.0 * float(N) * float(D):.3g} FLOPs is {factor:.3g}x the largest fitted "
            f"compute ({c_fit:.3g}); the fit's backtest measured max |error| {b['max_abs_rel_error']:.2%} (mean "
            f"{b['mean_abs_rel_error']:.2%}, {b['frac_inside_interval']:.0%} inside the 95% prediction interval, "
            f"{b['n']} predictions) at {span}")
    reach = summary.get("max_factor")
    if reach and factor > float(reach):
        text += (f"; the plan extrapolates beyond the farthest backtested factor ({float(reach):.3g}x), so its loss "
                 "error is unmeasured there: widen the runs' compute range or treat the predicted loss as a guess")
    elif not inside:
        text += " (the bin nearest this factor)"
    return text


def inference_budget_warning(train_flops: float, budget_flops: float) -> str:
    return (f"inference-aware allocation trains with {train_flops:.3g} FLOPs, {train_flops / budget_flops:.2f}x "
            "the budget, to reach the Chinchilla loss of the budget with a smaller, cheaper-to-serve model")


def hparams_warnings(width, *, preset: str | None, lr_given: bool, deepseek_lr: float) -> list[str]:
    """The transfer's own warnings, then what using these hparams in this plan means."""
    if width is None:
        return []
    out = list(width.warnings)
    if preset is not None:
        out.append(f"hparams given with preset {preset}: the published recipe's LR is used; "
                   "the hparams are reported per group but not applied")
    elif width.is_mup and not lr_given:
        hidden = width.hidden.lr
        if not (deepseek_lr / MUP_DEEPSEEK_FACTOR <= hidden <= deepseek_lr * MUP_DEEPSEEK_FACTOR):
            out.append(f"μP hidden LR {hidden:.3g} differs from DeepSeek's eta_opt {deepseek_lr:.3g} by more than 10x; "
                       "check the proxy sweep (base width, LR horizon)")
    if width.parameterization == "sp" and preset is None:
        out.append("hparams are SP (standard parameterization): they were tuned at another width and "
                   "carry no transfer guarantee; prefer μP hparams (`scaleplan sweep` with --param mup)")
    return out


def memory_warning(memory, gpu) -> list[str]:
    if memory.fits:
        return []
    limit = gpu.memory_gib * (1 - memory.margin)
    return [f"memory {memory.breakdown.total_gib:.1f} GiB per GPU exceeds {limit:.1f} GiB ({1 - memory.margin:.0%} of "
            f"the {gpu.name}'s {gpu.memory_gib:.1f} GiB, keeping a {memory.margin:.0%} margin); use more GPUs, "
            "higher TP/PP, full recompute or a smaller micro-batch"]


def price_warning(time_cost) -> list[str]:
    if not time_cost.price_is_placeholder:
        return []
    return [f"cost uses the placeholder price ${DEFAULT_PRICE_PER_GPU_HOUR:.2f}/GPU-hour; pass --price"]


def run_warnings(*, tokens: int, params: int, inference_tokens: float, batch_tokens: int,
                 deepseek_batch_tokens: float, unique_tokens: float | None) -> list[str]:
    """Tokens per parameter, batch against the critical batch, epochs over the unique data."""
    w: list[str] = []
    tpp = tokens / params
    if tpp < 10:
        w.append(f"only {tpp:.1f} tokens per parameter (< 10): the model is undertrained for its size "
                 "(Hoffmann et al. 2022 optimum is ~20); consider a smaller model")
    elif tpp > 200 and not inference_tokens:
        w.append(f"{tpp:.0f} tokens per parameter is far above the compute-optimal ~20 (Hoffmann et al. 2022); "
                 "fine if inference cost matters (Sardana et al. 2024), else a larger model gets a lower loss")
    if deepseek_batch_tokens:
        ratio = batch_tokens / deepseek_batch_tokens
        if ratio > 4:
            w.append(f"global batch {batch_tokens:,} tokens is {ratio:.1f}x the DeepSeek-optimal "
                     f"{deepseek_batch_tokens:,.0f} tokens: far above the critical batch, extra tokens per step are wasted")
    if unique_tokens:
        epochs = tokens / unique_tokens
        if epochs > MAX_GOOD_EPOCHS:
            w.append(f"{epochs:.1f} epochs over {unique_tokens:,.0f} unique tokens: beyond ~4 epochs repeated data is "
                     "worth much less than new data (Muennighoff et al. 2023); get more data or train a larger model less")
        elif epochs > 1:
            w.append(f"unique data is repeated {epochs:.2f} times (<= 4 epochs is nearly as good as unique data, "
                     "Muennighoff et al. 2023)")
    return w


def no_hparams_warning(has_hparams: bool, preset: str | None) -> list[str]:
    if has_hparams or preset is not None:
        return []
    return ["no --hparams: LR from DeepSeek's fit (SP-trained models); tune μP hparams on a proxy "
            "for a better LR"]
