"""Step 3, the training recipe: global batch, steps, peak LR and its schedule, optimizer settings.

Choices, in order of precedence:

* Global batch: the request's (a preset's published one); else DeepSeek LLM's B_opt(C) in
  sequences (DeepSeek-AI 2024, eq. 1, planner/batch_lr.py), rounded to a multiple of the GPU
  count when it is at least that large (any data-parallel size then divides it), else of 8.
* Peak LR: an explicit ``lr``; the preset's published LR; μP hparams transferred to the target
  width (``WidthHParams``, planner/width_hparams.py: Megatron's ``--lr`` is the hidden-matrix LR
  base lr / m_d and ``decoupled_lr`` the embedding/readout LR); SP hparams as they are; else
  DeepSeek's eta_opt(C). DeepSeek's optimum is computed once per plan (:func:`deepseek_optimum`).
* Training horizon: an LR from proxy-tuned hparams is multiplied by (T_target / T_proxy)^b, T in
  training tokens (T_proxy: hparams.yaml ``source.tokens``), b the project's measured exponent
  (planner/horizon.py, studies/horizon); :func:`apply_horizon` records it in the hparams section
  (applied or why not) and the LR source says so. Off with ``horizon_correction=False``.
* Schedule: cosine (or WSD) to ``MIN_LR_RATIO`` of the peak, warmup ``DEFAULT_WARMUP_ITERS`` but
  at most ``MAX_WARMUP_FRAC`` of the run (or the hparams' warmup fraction). Our plans decay to the
  end (``lr_decay_iters = train_iters``, counted from step 0 including warmup, as Megatron does);
  a preset keeps its published ``lr_decay_iters`` when it runs the published number of steps.
* Optimizer (AdamW): the preset's settings; else the hparams' betas, eps, weight decay and init
  std; else betas (0.9, 0.95), eps 1e-8, weight decay 0.1, clip 1.0, init std 0.02 (Llama 2 §2.2).
"""
from __future__ import annotations

import math
from pathlib import Path
from dataclasses import dataclass, replace

from planner.errors import UserError
from planner.plan.request import PlanRequest
from planner.plan.sections import SCHEDULES, TrainingRecipe
from planner.shape import ModelShape

# Warmup 2000 steps (Llama 2 §2.2; DeepSeek LLM §2.3 uses 2000 too), never more than 5% of the run.
DEFAULT_WARMUP_ITERS = 2000
MAX_WARMUP_FRAC = 0.05
# Cosine to 10% of the peak (Hoffmann et al. 2022 §4; Llama 2 §2.2).
MIN_LR_RATIO = 0.1
# WSD: stable, then decay over the last 20% (Hägele et al. 2024, arXiv:2405.18392, find a 20%
# cooldown matches cosine).
WSD_DECAY_FRAC = 0.2
DEEPSEEK_LR_SOURCE = "DeepSeek LLM eq. 1: eta_opt = 0.3118 C^-0.125 (C = M D)"


@dataclass(frozen=True)
class DeepSeekOptimum:
    """DeepSeek LLM's compute-optimal batch (tokens) and peak LR for a shape and token count."""

    batch_tokens: float
    lr: float


def deepseek_optimum(shape: ModelShape, tokens: float) -> DeepSeekOptimum:
    """B_opt and eta_opt at DeepSeek's C = M D (M: their non-embedding FLOPs per token)."""
    from planner.batch_lr import DEEPSEEK2024  # scipy: imported when a plan is made, not when one is read

    r = DEEPSEEK2024.for_model(shape.n_layers, shape.d_model, shape.seq_len, tokens)
    return DeepSeekOptimum(batch_tokens=r["batch_tokens"], lr=r["lr"])


def gated_hparams(request: PlanRequest):
    """(the hparams the plan applies, warnings). An hparams.yaml (a path: a sweep's output) must pass
    the quality gate (planner/hparams_gate.py: enough trials, optima inside the search ranges, a
    transfer check over >= 3 widths); below it the plan falls back to the published LR/batch laws,
    unless ``force_hparams``. HParams given as an object or a mapping are the caller's assertion."""
    from planner.hparams import load_hparams
    from planner.hparams_gate import hparams_quality

    hp = load_hparams(request.hparams)
    if hp is None or not isinstance(request.hparams, (str, Path)):
        return hp, []
    report = hparams_quality(hp)
    if report.passes:
        return hp, []
    reasons = "; ".join(report.reasons())
    if request.force_hparams:
        return hp, [f"hparams {request.hparams} FAIL the transfer quality gate ({reasons}) and are applied because "
                    "--force-hparams was given: treat the LR and inits as untested"]
    return None, [f"hparams {request.hparams} fail the transfer quality gate ({reasons}); the plan uses the "
                  "published LR/batch laws instead (tune longer and run `scaleplan transfer-check`, or pass "
                  "--force-hparams)"]


def applies_mup(request: PlanRequest, width) -> bool:
    """True when the plan trains with the μP per-group values: μP hparams, no given LR, and no preset
    or one that published its μP (``Recipe.hparams``: Crystal)."""
    published = request.recipe is None or getattr(request.recipe, "hparams", None) is not None
    return width is not None and width.is_mup and published and request.lr is None


def training_recipe(request: PlanRequest, shape: ModelShape, tokens: int, n_gpus: int, width,
                    hp, deepseek: DeepSeekOptimum) -> TrainingRecipe:
    """The run's TrainingRecipe (module docstring); ``width`` is ``hp.at_width(...)`` or None."""
    seq_len = request.seq_len
    gbs = global_batch(request, deepseek, n_gpus)
    train_iters = math.ceil(tokens / (gbs * seq_len))
    lr, lr_source, min_lr = peak_lr(request, hp, deepseek)
    if train_iters < 2:
        raise UserError(f"the run is only {train_iters} step(s) at global batch {gbs} x {seq_len}; "
                        "raise the budget or lower the batch")
    betas, eps, wd, clip, init_std = optimizer_settings(request, hp)
    mup = applies_mup(request, width)
    mup_fields = {}
    hz = horizon_applied(width)
    if hz is not None:
        lr_source += (f" x training-horizon factor {hz['factor']:.4g} = (T_target/T_proxy)^b, T_proxy "
                      f"{hz['t_proxy_tokens']:.4g}, T_target {hz['t_target_tokens']:.4g} tokens, b {hz['exponent']:.4g} "
                      f"(95% CI {hz['exponent_ci_low']:.4g}..{hz['exponent_ci_high']:.4g}; planner/horizon.py)")
        if not mup:
            lr = lr * hz["factor"]
    if mup:
        ratio = MIN_LR_RATIO if min_lr is None else min_lr / lr  # a preset's published min/peak, else ours
        lr_source += f"; Megatron --lr is the hidden-matrix LR lr/m_d = {width.hidden.lr:.4g}"
        lr, init_std = width.hidden.lr, width.hidden.init_std
        min_lr = None if min_lr is None else ratio * lr
        wd = width.hidden.weight_decay if hp.wd_rule == "mup" else wd
        mup_fields = {"decoupled_lr": width.embedding.lr, "decoupled_min_lr": ratio * width.embedding.lr,
                      "embedding_init_std": width.embedding.init_std}
    schedule = lr_schedule(request, train_iters, hp)
    min_lr = float(min_lr if min_lr is not None else MIN_LR_RATIO * lr)
    if min_lr > float(lr):
        raise UserError(f"min lr {min_lr:g} exceeds the peak lr {float(lr):g}; lower --min-lr")
    r = request.recipe
    return TrainingRecipe(
        global_batch=gbs, seq_len=seq_len, train_iters=int(train_iters), lr=float(lr),
        min_lr=float(request.min_lr) if request.min_lr is not None else min_lr, lr_source=lr_source, **schedule,
        betas=[float(b) for b in betas], eps=float(eps), weight_decay=float(wd), clip_grad=float(clip),
        init_std=float(init_std), flops_per_token=shape.flops_per_token_megatron,
        deepseek_batch_tokens=None if r else deepseek.batch_tokens,
        megatron_extra=dict(r.megatron_extra) if r is not None and r.megatron_extra else None, **mup_fields)


def horizon_record(request: PlanRequest, hp, tokens: int, correction=None) -> dict:
    """The horizon correction for hparams ``hp`` trained to ``tokens``: ``describe()``'s record when
    it applies, else ``{"applied": False, "reason": ...}`` (module docstring)."""
    from planner.horizon import MEASURED

    c = MEASURED if correction is None else correction
    if not request.horizon_correction:
        return {"applied": False, "reason": "turned off (--no-horizon-correction)"}
    if request.recipe is not None or request.lr is not None:
        return {"applied": False, "reason": "the peak LR is the preset's or given, not the hparams'"}
    if c.unusable_reason():
        return {"applied": False, "reason": c.unusable_reason()}
    t_proxy = (hp.source or {}).get("tokens")
    if isinstance(t_proxy, bool) or not isinstance(t_proxy, (int, float)) or not t_proxy > 0:
        return {"applied": False, "reason": "the hparams do not record the proxy's training tokens (source.tokens), "
                                            "so T_proxy is unknown"}
    return c.describe(float(t_proxy), float(tokens))


def apply_horizon(request: PlanRequest, hp, width, tokens: int, correction=None):
    """``width`` (hp.at_width(...)) with every group's LR times the horizon factor when it applies, and the
    record of what was done; a correction that cannot be made for want of T_proxy adds a warning."""
    if width is None:
        return None
    rec = horizon_record(request, hp, tokens, correction)
    if rec["applied"]:
        return width.with_lr_factor(rec["factor"], rec)
    out = replace(width, horizon=rec)
    if rec["reason"].startswith("the hparams do not record") and isinstance(request.hparams, (str, Path)):
        out = replace(out, warnings=[*width.warnings, "no training-horizon LR correction: the hparams do not record "
                                     "the proxy's training tokens (source.tokens); re-export them with `scaleplan "
                                     "sweep export`, or pass --no-horizon-correction to silence this"])
    return out


def horizon_applied(width) -> dict | None:
    """The applied horizon record of a plan's hparams, or None."""
    rec = getattr(width, "horizon", None) if width is not None else None
    return rec if rec and rec.get("applied") else None


def global_batch(request: PlanRequest, deepseek: DeepSeekOptimum, n_gpus: int) -> int:
    """Sequences per step: the request's, else DeepSeek's B_opt rounded (module docstring)."""
    if request.global_batch:
        return int(request.global_batch)
    seqs = deepseek.batch_tokens / request.seq_len
    multiple = n_gpus if seqs >= n_gpus else 8
    return max(multiple, int(round(seqs / multiple)) * multiple)


def peak_lr(request: PlanRequest, hp, deepseek: DeepSeekOptimum) -> tuple[float, str, float | None]:
    """(base peak LR, where it came from, the published min LR or None); μP maps it per group later."""
    r = request.recipe
    if r is not None:
        lr, source, min_lr = r.lr, f"preset {r.name} ({r.source})", r.min_lr
    elif hp is not None:
        lr, source, min_lr = hp.lr, f"hparams ({hp.parameterization}, base width {hp.base_width})", None
    else:
        lr, source, min_lr = deepseek.lr, DEEPSEEK_LR_SOURCE, None
    if request.lr is not None:
        lr, source = float(request.lr), "given"
    return lr, source, min_lr


def optimizer_settings(request: PlanRequest, hp) -> tuple[list[float], float, float, float, float]:
    """(betas, eps, weight decay, clip, init std): the preset's, the hparams', or the defaults."""
    r = request.recipe
    if r is not None:
        return list(r.betas), r.eps, r.weight_decay, r.clip_grad, r.init_std
    if hp is not None:
        return list(hp.betas), hp.eps, hp.weight_decay, 1.0, hp.init_std
    return [0.9, 0.95], 1e-8, 0.1, 1.0, 0.02


def lr_schedule(request: PlanRequest, train_iters: int, hp) -> dict[str, int | str]:
    """schedule, warmup_iters, lr_decay_iters (+ WSD's decay iters and style)."""
    r = request.recipe
    schedule = request.schedule or "cosine"
    if schedule not in SCHEDULES:
        raise UserError(f"unknown schedule {schedule!r}; use cosine or wsd")
    warmup = request.warmup_iters
    if warmup is None:
        if hp is not None and hp.warmup_frac:
            warmup = int(round(hp.warmup_frac * train_iters))
        else:
            warmup = min(DEFAULT_WARMUP_ITERS, int(MAX_WARMUP_FRAC * train_iters))
    decay = train_iters
    if r is not None and r.train_iters and train_iters == r.train_iters and schedule == r.schedule:
        decay = r.train_iters - r.warmup_iters  # the published Megatron value
    out: dict[str, int | str] = {"schedule": schedule, "warmup_iters": max(0, min(int(warmup), train_iters - 1)),
                                 "lr_decay_iters": int(decay)}
    if schedule == "wsd":
        out["wsd_decay_iters"] = max(1, int(round(WSD_DECAY_FRAC * train_iters)))
        out["wsd_decay_style"] = "linear"
    return out
