"""Named presets: a registry of factories, each returning the PlanRequest of a published run.

Like a model-config registry (name -> function -> config), ``register_preset(name, factory)``
adds one; ``preset_request(name)`` calls it. A preset plan then runs the same steps as a budget
plan (planner/plan/build.py); the request just pins the shape, the published optimizer and
schedule (``recipe``) and the published layout. The published values and their sources are in
planner/recipes.py. ``with_preset(request)`` fills the options a user left unset from the preset.
"""
from __future__ import annotations

import copy
from functools import partial
from typing import Callable

from planner.errors import UserError
from planner.plan.request import PlanRequest
from planner.recipes import RECIPES, Recipe
from planner.shape import preset_shape

PresetFactory = Callable[[], PlanRequest]

_REGISTRY: dict[str, PresetFactory] = {}


def register_preset(name: str, factory: PresetFactory) -> None:
    """Register ``factory`` (no arguments -> PlanRequest) under ``name`` (case-insensitive)."""
    key = name.lower()
    if key in _REGISTRY:
        raise ValueError(f"preset {name!r} is already registered")
    _REGISTRY[key] = factory


def preset_names() -> list[str]:
    return sorted(_REGISTRY)


def preset_request(name: str) -> PlanRequest:
    """The PlanRequest of preset ``name``; UserError naming the known presets when unknown."""
    factory = _REGISTRY.get(str(name).lower())
    if factory is None:
        raise UserError(f"unknown preset {name!r}; known presets: {', '.join(preset_names())} "
                        "(see `scaleplan plan --list-presets`)")
    return factory()


def with_preset(request: PlanRequest) -> PlanRequest:
    """``request`` with every option it leaves unset (None) taken from its preset's request."""
    if request.preset is None:
        return request
    published = preset_request(request.preset)
    fill = {k: v for k, v in published.given().items()
            if getattr(request, k) is None or (k == "phases" and not request.phases)}  # phases: [] = unset
    return request.replace(**fill, preset=published.preset)


def published_run(recipe: Recipe) -> PlanRequest:
    """The request that reproduces ``recipe``: its shape, optimizer/schedule, batch, hardware and layout,
    and its μP hyperparameters when it published them (``Recipe.hparams``, applied per group)."""
    shape = preset_shape(recipe.shape_preset)
    return PlanRequest(
        preset=recipe.name, recipe=recipe, shape=shape, seq_len=recipe.seq_len,
        global_batch=recipe.global_batch, schedule=recipe.schedule, warmup_iters=recipe.warmup_iters,
        gpu=recipe.gpu or "h100", n_gpus=recipe.n_gpus, gpus_per_node=recipe.gpus_per_node, tp=recipe.tp,
        pp=recipe.pp, cp=recipe.cp, micro_batch=recipe.micro_batch, recompute=recipe.recompute,
        sharding=recipe.plan_sharding, phases=phases_in_plan_lr(recipe, shape.d_model), hparams=recipe.hparams)


def phases_in_plan_lr(recipe: Recipe, d_model: int) -> list[dict]:
    """The recipe's phases with their LRs in the plan's LR unit.

    Published phases give the base LR (Crystal's params.yaml ``learning_rate``: embedding, readout,
    norms). A μP plan's LR (``training.lr``, Megatron's ``--lr`` unit in planner/plan/phases.py and
    megatron_phases.py) is the hidden-matrix LR, base / m_d (planner/width_hparams.py), so under
    μP hparams each phase's ``lr`` and ``min_lr`` are divided by m_d = d_model / base_width (a power
    of two for Crystal: 16, so the values stay exact); without them the phases are as published.
    """
    phases = copy.deepcopy(list(recipe.phases))
    hp = recipe.hparams
    if hp is None or hp.parameterization != "mup":
        return phases
    m = hp.width_mult(d_model)
    for p in phases:
        for key in ("lr", "min_lr"):
            if p.get(key) is not None:
                p[key] = p[key] / m
    return phases


def preset_caveats(name: str | None) -> list[str]:
    """What preset ``name``'s plan assumes or cannot represent (its recipe's caveats; [] for a budget plan)."""
    if name is None or str(name).lower() not in _REGISTRY:
        return []
    recipe = preset_request(name).recipe
    return list(recipe.caveats) if recipe is not None else []


for _recipe in RECIPES.values():
    register_preset(_recipe.name, partial(published_run, _recipe))
