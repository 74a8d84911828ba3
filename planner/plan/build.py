"""``make_plan``: a PlanRequest through the named steps, in order, to a Plan.

resolve the request (preset, defaults) -> allocate (allocation.py) -> choose the shape
(shape_choice.py) -> realise it (realise.py: tokens, GPU count, training recipe and the μP values
at the planned width, layout and memory, time and cost) -> when the law allows, the joint choice
of shape and layout inside the near-optimal band (joint_choice.py) -> the run's cadence
(operations.py) -> law sensitivity (sensitivity.py) -> warnings (warnings.py).
"""
from __future__ import annotations

import time
from typing import Any

from planner.hardware import get_gpu
from planner.plan.allocation import allocate
from planner.plan.budget import Budget
from planner.plan.continuation import check_request, continuation_warnings, continued_loss, resolved, training_with
from planner.plan.data_mixture import launch_data, plan_repetition, repetition_warnings
from planner.plan.operations import plan_operations
from planner.plan.joint_choice import JointChoice, choose_jointly, near_optimal_band
from planner.plan.plan import Plan
from planner.plan.presets import preset_caveats, with_preset
from planner.plan.request import DEFAULT_GPU, DEFAULT_SEQ_LEN, PlanRequest
from planner.plan.phases import resolve_plan_phases
from planner.plan.sections import LayoutOption, ShapeOption, check_data, check_phases
from planner.plan.realise import Realised, realise
from planner.plan.sensitivity import law_sensitivity
from planner.plan.serving_choice import cap_for_serving
from planner.plan.shape_choice import band_shapes, choose_shape
from planner.plan.training import gated_hparams
from planner.plan.warnings import (hparams_warnings, memory_warning, no_hparams_warning, price_warning,
                                   run_warnings)
from planner.shape import ModelShape


def make_plan(request: PlanRequest | Budget | float | None = None, **options: Any) -> Plan:
    """The Plan for ``request`` (or for a budget and the keyword options of :class:`PlanRequest`)."""
    request = PlanRequest.of(request, **options)
    request = resolve(request)  # first: a preset may bring its published μP hparams (Recipe.hparams)
    cont = check_request(request)  # continual pretraining (planner/plan/continuation.py); None from scratch
    hp, gate_warnings = gated_hparams(request)
    gpu = get_gpu(request.gpu)
    allocation, budget, law_warnings = allocate(request)
    serving = None
    if request.serve_on and not allocation.is_preset:
        allocation, serving = cap_for_serving(request, allocation)
    shape, candidates = choose_shape(request, allocation)
    chosen = realise(request, shape, budget, gpu, hp)
    choice = None
    if joint_choice_applies(request, allocation) and not (serving and serving.binding):
        chosen, choice, candidates = choose_in_band(request, allocation, chosen, candidates, gpu, hp)
    r = chosen
    training, tokens = r.training, r.tokens
    if cont is not None:
        cont = resolved(cont, training, law_name(request.law))
        training = training_with(training, cont)
    operations = plan_operations(global_batch=training.global_batch, seq_len=training.seq_len,
                                 train_iters=training.train_iters,
                                 step_seconds=r.time_cost.estimate.seconds / training.train_iters,
                                 checkpoint_interval_steps=r.checkpoints.interval_steps,
                                 predicted_loss=predicted_loss(request, allocation, r, cont))
    preset = request.recipe.name if request.recipe is not None else None
    warnings = [
        *law_warnings, *gate_warnings, *preset_caveats(preset),
        *hparams_warnings(r.width, preset=None if training.decoupled_lr is not None else preset,  # applied: Crystal
                          lr_given=request.lr is not None, deepseek_lr=r.deepseek.lr),
        *r.layout_warnings, *memory_warning(r.memory, gpu), *price_warning(r.time_cost), *r.checkpoints.warnings(),
        *run_warnings(tokens=tokens, params=r.shape.total_params, inference_tokens=request.inference_tokens,
                      batch_tokens=training.batch_tokens, deepseek_batch_tokens=r.deepseek.batch_tokens,
                      unique_tokens=request.unique_tokens),
        *no_hparams_warning(request.hparams is not None, preset), *serving_warning(serving, r.shape.total_params),
        *continued_warnings(request, r, cont),
    ]
    sensitivity = (law_sensitivity(r.budget.flops, r.shape.total_params, tokens, request.law)
                   if not allocation.is_preset else [])
    meta = {"command": request.command or "make_plan(...)",
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    plan = Plan(budget=r.budget, allocation=allocation, shape=r.shape, tokens=tokens, training=training,
                placement=r.placement, memory=r.memory, time_cost=r.time_cost, operations=operations,
                checkpoints=r.checkpoints, serving=serving, layout_options=layout_options(r, gpu),
                hparams=r.width, candidates=candidates, choice=choice, sensitivity=sensitivity,
                phases=check_phases(list(request.phases)),
                data=check_data(launch_data(dict(request.data), request.data_sources)), warnings=warnings,
                preset=preset, meta=meta)
    resolve_plan_phases(plan)  # phase lengths, modes and mixtures refused here, not first at export
    plan.data_repetition = plan_repetition(plan, request.law, request.data_sources)  # data_mixture.py
    plan.warnings = plan.warnings + repetition_warnings(plan.data_repetition)
    return plan


def joint_choice_applies(request: PlanRequest, allocation) -> bool:
    """A searched shape for a law's compute-optimal (or target-loss) answer, with a tolerance > 0."""
    return (request.shape is None and not allocation.is_preset and bool(request.loss_tolerance)
            and allocation.mode in ("compute-optimal", "target-loss"))


def layout_options(r: Realised, gpu) -> list[LayoutOption]:
    """The searched layouts for the chosen shape with their memory, MFU and days (none when pinned)."""
    flops = r.training.model_flops
    return [LayoutOption(layout=c.layout.describe(), memory_gib=c.memory.total_gib, mfu=c.mfu,
                         days=flops / (r.placement.n_gpus * gpu.peak_bf16_flops * c.mfu) / 86400.0, why=c.why)
            for c in r.alternatives]


def predicted_loss(request: PlanRequest, allocation, r: Realised, cont=None) -> float | None:
    """The plan's law at the chosen shape's total parameters and the planned tokens (None for a preset);
    a continued run (``cont``): at the tokens seen plus the planned ones, preset or not (continuation.py)."""
    from planner.laws import load_law

    if cont is not None:
        return continued_loss(load_law(request.law), r.shape.total_params, cont.tokens_seen, r.tokens)
    if allocation.is_preset:
        return None
    return float(load_law(request.law).predict(r.shape.total_params, r.tokens))


def law_name(law) -> str:
    """The name of the request's law (a preset name, a fit's name or the path given)."""
    from planner.laws import load_law

    return load_law(law).name or str(law)


def continued_warnings(request: PlanRequest, r: Realised, cont) -> list[str]:
    """What a continued run's prediction assumes (planner/plan/continuation.py); [] from scratch."""
    if cont is None:
        return []
    from planner.laws import load_law

    law = load_law(request.law)
    return continuation_warnings(cont, law_name=law_name(request.law), params=r.shape.total_params,
                                 tokens=r.tokens, loss=continued_loss(law, r.shape.total_params, cont.tokens_seen,
                                                                      r.tokens), seq_len=r.training.seq_len)


def serving_warning(serving, params: int) -> list[str]:
    """The chosen shape above the serving cap (the search may land a little over its target)."""
    if serving is None or params <= serving.n_max:
        return []
    return [f"the chosen shape has {params:.4g} parameters, {params / serving.n_max - 1:.1%} over the largest that "
            f"serves on {serving.target} ({serving.n_max:.4g}); pin a smaller shape or relax --serve-on"]


def choose_in_band(request: PlanRequest, allocation, baseline: Realised, candidates: list[ShapeOption], gpu, hp
                   ) -> tuple[Realised, JointChoice, list[ShapeOption]]:
    """(the winner, the JointChoice record, the shape options realised, the winner first): every
    family shape in the band carried through steps 3-5 and compared with the baseline."""
    from planner.laws import load_law

    law = load_law(request.law)
    band = near_optimal_band(law, allocation.C, request.loss_tolerance)
    options = {_key(baseline.shape): (candidates[0] if candidates else None, baseline)}
    for cand in band_shapes(request, band):
        if _key(cand.shape) not in options:
            options[_key(cand.shape)] = (ShapeOption.from_candidate(cand),
                                         realise(request, cand.shape, baseline.budget, gpu, hp))
    realised = [r for _, r in options.values()]
    chosen, choice = choose_jointly(request, realised, baseline, law, allocation.loss, band, request.loss_tolerance)
    shapes = [o for o, r in options.values() if o is not None]
    shapes.sort(key=lambda o: (o.total_params, o.n_layers, o.d_model) != (chosen.shape.total_params,
                                                                           chosen.shape.n_layers, chosen.shape.d_model))
    return chosen, choice, shapes


def _key(shape: ModelShape) -> tuple[int, ...]:
    return shape.n_layers, shape.d_model, shape.d_ffn, shape.n_heads, shape.n_kv_heads


def resolve(request: PlanRequest) -> PlanRequest:
    """The request with its preset's options filled in and the default sequence length set."""
    request = with_preset(request)
    return request.replace(seq_len=int(request.seq_len or DEFAULT_SEQ_LEN), gpu=request.gpu or DEFAULT_GPU)
