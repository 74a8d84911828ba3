"""Step 5, time and cost: the run's model FLOPs at an MFU on the placed GPUs, and its price.

The FLOPs are ``train_iters x global_batch x seq_len x`` Megatron's FLOPs per token (whole steps,
so slightly above the budget). MFU, in order: the request's, the budget's (a GPU-time budget was
converted at it), the chosen layout's estimate (planner/parallel/throughput.py); the price is the
request's or the placeholder ``DEFAULT_PRICE_PER_GPU_HOUR`` (warned).
"""
from __future__ import annotations

from planner.cost import estimate_time
from planner.hardware import DEFAULT_PRICE_PER_GPU_HOUR, GPU
from planner.plan.budget import Budget
from planner.plan.request import PlanRequest
from planner.plan.sections import TimeCost, TrainingRecipe


def time_and_cost(request: PlanRequest, training: TrainingRecipe, budget: Budget, gpu: GPU, n_gpus: int,
                  layout_mfu: float | None, mfu: float | None = None) -> TimeCost:
    """The run's time and price at ``mfu`` if given, else the request's, the budget's or the layout's."""
    if mfu is None:
        mfu = request.mfu if request.mfu is not None else budget.mfu if budget.mfu is not None else layout_mfu
    price = request.price_per_gpu_hour
    estimate = estimate_time(training.model_flops, gpu, n_gpus, mfu,
                             price_per_gpu_hour=price if price is not None else DEFAULT_PRICE_PER_GPU_HOUR)
    return TimeCost(estimate, price_is_placeholder=price is None)
