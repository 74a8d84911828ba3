"""Steps 3-5 for one shape: tokens, GPU count, training recipe, layout and memory, time and cost.

``realise`` is what the plan does once a shape is chosen; the joint choice (joint_choice.py) runs
it for every shape in the near-optimal band and keeps the best.

Tokens: the request's; else, for a GPU-time budget (GPU-hours, or GPUs x days), what the placed
layout trains in that time at its estimated MFU (the deadline is the budget: a faster shape and
layout buy more tokens); else the budget's FLOPs / Megatron FLOPs per token of the shape; else a
preset's published count (whose FLOPs then become the budget). Time and cost use the request's
MFU, else the layout's estimate, else the budget's (the GPU prior it was converted at).
"""
from __future__ import annotations

from dataclasses import dataclass

from planner.hardware import GPU
from planner.resilience import CheckpointPlan, plan_checkpoints
from planner.plan.budget import Budget
from planner.plan.placement import gpu_count, place_on_hardware
from planner.plan.request import PlanRequest
from planner.plan.sections import MemoryFit, Placement, TimeCost, TrainingRecipe
from planner.plan.time_cost import time_and_cost
from planner.plan.training import DeepSeekOptimum, apply_horizon, deepseek_optimum, training_recipe
from planner.shape import ModelShape


@dataclass(frozen=True)
class Realised:
    """One shape carried through steps 3-5 (the pieces a Plan is assembled from)."""

    shape: ModelShape
    tokens: int
    budget: Budget
    deepseek: DeepSeekOptimum
    width: object  # WidthHParams | None
    training: TrainingRecipe
    placement: Placement
    memory: MemoryFit
    layout_mfu: float | None
    layout_warnings: list[str]
    time_cost: TimeCost
    alternatives: list  # the layout search's runners-up (LayoutCandidate), best first
    checkpoints: CheckpointPlan

    @property
    def days(self) -> float:
        return self.time_cost.estimate.days


def is_deadline(request: PlanRequest, budget: Budget | None) -> bool:
    """True when the budget is GPU time (tokens then follow from the layout's speed)."""
    return budget is not None and budget.gpu_hours is not None and request.tokens is None


def realise(request: PlanRequest, shape: ModelShape, budget: Budget | None, gpu: GPU, hp) -> Realised:
    """Steps 3-5 for ``shape`` (module docstring)."""
    tokens, budget = plan_tokens(request, shape, budget)
    n_gpus = gpu_count(request, budget, gpu)
    first = _place(request, shape, tokens, budget, gpu, hp, n_gpus)
    if not is_deadline(request, budget):
        return first
    mfu = request.mfu if request.mfu is not None else first.layout_mfu or budget.mfu
    seconds = budget.gpu_hours * 3600.0 / n_gpus * first.checkpoints.goodput  # failures eat into the deadline
    reached = int(seconds * n_gpus * gpu.peak_bf16_flops * mfu / shape.flops_per_token_megatron)
    # same batch, so the same layout: only the step count (and the schedule) follow the tokens
    return _place(request.replace(global_batch=first.training.global_batch), shape, reached, budget, gpu, hp,
                  n_gpus, placed=first)


def plan_tokens(request: PlanRequest, shape: ModelShape, budget: Budget | None) -> tuple[int, Budget]:
    """Training tokens before placement: the request's, budget / Megatron FLOPs per token, or the
    recipe's published count (whose FLOPs then become the budget)."""
    fpt = shape.flops_per_token_megatron
    tokens = request.tokens
    if tokens is None:
        tokens = int(budget.flops / fpt) if budget is not None else request.recipe.tokens
    if budget is None:
        budget = Budget(flops=tokens * fpt, how="preset tokens x Megatron FLOPs/token")
    return int(tokens), budget


def _place(request: PlanRequest, shape: ModelShape, tokens: int, budget: Budget, gpu: GPU, hp, n_gpus: int,
           placed: Realised | None = None) -> Realised:
    deepseek = deepseek_optimum(shape, tokens)
    width = hp.at_width(shape.d_model, shape.n_layers, shape.head_dim) if hp is not None else None
    width = apply_horizon(request, hp, width, tokens)  # the training-horizon LR factor (planner/horizon.py)
    training = training_recipe(request, shape, tokens, n_gpus, width, hp, deepseek)
    if placed is None:
        placement, memory, layout_mfu, warnings, alternatives = place_on_hardware(request, shape, gpu, n_gpus,
                                                                                  training.global_batch)
    else:
        placement, memory, layout_mfu = placed.placement, placed.memory, placed.layout_mfu
        warnings, alternatives = placed.layout_warnings, placed.alternatives
    mfu = request.mfu if request.mfu is not None else layout_mfu if is_deadline(request, budget) else None
    time_cost = time_and_cost(request, training, budget, gpu, n_gpus, layout_mfu, mfu=mfu)
    return Realised(shape=shape, tokens=tokens, budget=budget, deepseek=deepseek, width=width, training=training,
                    placement=placement, memory=memory, layout_mfu=layout_mfu, layout_warnings=warnings,
                    time_cost=time_cost, alternatives=alternatives,
                    checkpoints=checkpoint_plan(request, shape, placement, training, time_cost))


def checkpoint_plan(request: PlanRequest, shape: ModelShape, placement: Placement, training: TrainingRecipe,
                    time_cost: TimeCost) -> CheckpointPlan:
    """Checkpoint size, Young/Daly interval, disk and goodput (planner/resilience.py) for the run.
    FSDP keeps fp32 sharded parameters as the master copy (no separate bf16 weights in the checkpoint)."""
    seconds = time_cost.estimate.seconds
    fsdp = placement.layout.fsdp
    given = {k: v for k, v in (("fs_bandwidth", request.fs_bandwidth), ("node_mtbf_hours", request.node_mtbf_hours),
                               ("keep", request.keep_checkpoints)) if v is not None}
    return plan_checkpoints(shape.total_params, n_gpus=placement.n_gpus, gpus_per_node=placement.gpus_per_node,
                            step_seconds=seconds / training.train_iters, train_seconds=seconds,
                            disk_bytes=request.disk_bytes, weights_dtype_bytes=4 if fsdp else 2,
                            master_bytes=0 if fsdp else 4, **given)
