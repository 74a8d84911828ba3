"""``make_plan``: a PlanRequest through the named steps, in order, to a Plan.

resolve the request (preset, defaults) -> allocate (allocation.py) -> choose the shape
(shape_choice.py) -> tokens for that shape -> GPU count (placement.py) -> training recipe and the
μP values at the planned width (training.py, planner/width_hparams.py) -> place on hardware:
layout and memory (placement.py) -> time and cost (time_cost.py) -> warnings (warnings.py).
"""
from __future__ import annotations

import time
from typing import Any

from planner.hardware import get_gpu
from planner.hparams import load_hparams
from planner.plan.allocation import allocate
from planner.plan.budget import Budget
from planner.plan.placement import gpu_count, place_on_hardware
from planner.plan.plan import Plan
from planner.plan.presets import with_preset
from planner.plan.request import DEFAULT_SEQ_LEN, PlanRequest
from planner.plan.sections import check_data, check_phases
from planner.plan.shape_choice import choose_shape
from planner.plan.time_cost import time_and_cost
from planner.plan.training import deepseek_optimum, training_recipe
from planner.plan.warnings import (hparams_warnings, memory_warning, no_hparams_warning, price_warning,
                                   run_warnings)
from planner.shape import ModelShape


def make_plan(request: PlanRequest | Budget | float | None = None, **options: Any) -> Plan:
    """The Plan for ``request`` (or for a budget and the keyword options of :class:`PlanRequest`)."""
    request = PlanRequest.of(request, **options)
    gpu = get_gpu(request.gpu)
    hp = load_hparams(request.hparams)
    request = resolve(request)
    allocation, budget, law_warnings = allocate(request)
    shape, candidates = choose_shape(request, allocation)
    tokens, budget = plan_tokens(request, shape, budget)
    n_gpus = gpu_count(request, budget, gpu)
    deepseek = deepseek_optimum(shape, tokens)
    width = hp.at_width(shape.d_model, shape.n_layers, shape.head_dim) if hp is not None else None
    training = training_recipe(request, shape, tokens, n_gpus, width, hp, deepseek)
    placement, memory, layout_mfu, layout_warnings = place_on_hardware(request, shape, gpu, n_gpus,
                                                                       training.global_batch)
    time_cost = time_and_cost(request, training, budget, gpu, n_gpus, layout_mfu)
    preset = request.recipe.name if request.recipe is not None else None
    warnings = [
        *law_warnings,
        *hparams_warnings(width, preset=preset, lr_given=request.lr is not None, deepseek_lr=deepseek.lr),
        *layout_warnings, *memory_warning(memory, gpu), *price_warning(time_cost),
        *run_warnings(tokens=tokens, params=shape.total_params, inference_tokens=request.inference_tokens,
                      batch_tokens=training.batch_tokens, deepseek_batch_tokens=deepseek.batch_tokens,
                      unique_tokens=request.unique_tokens),
        *no_hparams_warning(hp is not None, preset),
    ]
    meta = {"command": request.command or "make_plan(...)",
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    return Plan(budget=budget, allocation=allocation, shape=shape, tokens=tokens, training=training,
                placement=placement, memory=memory, time_cost=time_cost, hparams=width, candidates=candidates,
                phases=check_phases(list(request.phases)), data=check_data(dict(request.data)), warnings=warnings,
                preset=preset, meta=meta)


def resolve(request: PlanRequest) -> PlanRequest:
    """The request with its preset's options filled in and the default sequence length set."""
    request = with_preset(request)
    return request.replace(seq_len=int(request.seq_len or DEFAULT_SEQ_LEN))


def plan_tokens(request: PlanRequest, shape: ModelShape, budget: Budget | None) -> tuple[int, Budget]:
    """Training tokens for the chosen shape: the request's, else budget / Megatron FLOPs per token,
    else the recipe's published count (whose FLOPs then become the budget)."""
    fpt = shape.flops_per_token_megatron
    tokens = request.tokens
    if tokens is None:
        tokens = int(budget.flops / fpt) if budget is not None else request.recipe.tokens
    if budget is None:
        budget = Budget(flops=tokens * fpt, how="preset tokens x Megatron FLOPs/token")
    return int(tokens), budget
