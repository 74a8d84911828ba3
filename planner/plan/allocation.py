"""Step 1, allocate: the scaling law's N* and D* for the budget (or the target loss).

Modes, in order of precedence: a target loss (the law's cheapest (N, D) reaching it, whose compute
becomes the budget); inference-aware (Sardana et al. 2024: same loss as Chinchilla at C, least
training + inference compute); data-constrained (Muennighoff et al. 2023: repeated data is worth
less); else compute-optimal (Hoffmann et al. 2022). The law's C = 6·N·D with total N; a preset
consults no law (its allocation records the recipe's source).
"""
from __future__ import annotations

from planner.errors import UserError
from planner.plan.budget import Budget
from planner.plan.request import PlanRequest
from planner.plan.sections import PlanAllocation
from planner.plan.warnings import inference_budget_warning, law_warnings


def allocate(request: PlanRequest) -> tuple[PlanAllocation, Budget | None, list[str]]:
    """(allocation, the budget to spend, warnings). The budget is None only for a preset without one."""
    if request.recipe is not None:
        r = request.recipe
        return PlanAllocation(law=None, mode=f"preset {r.name}", source=r.source), request.budget, []
    budget = request.budget
    if budget is None and request.target_loss is None:
        raise UserError("give a budget (--flops, --gpu-hours or --gpus/--days), a --target-loss, or a --preset")
    allocation, law = law_allocation(request)
    warnings: list[str] = []
    if budget is None:  # target loss: the law's compute becomes the budget
        budget = Budget(flops=float(allocation.C), how="target_loss")
    if allocation.train_flops:
        warnings.append(inference_budget_warning(allocation.train_flops, budget.flops))
        budget = Budget(flops=float(allocation.train_flops), how=f"inference-aware (budget {budget.flops:.3g})",
                        gpu=budget.gpu, n_gpus=budget.n_gpus, mfu=budget.mfu)
    return allocation, budget, warnings + law_warnings(law, allocation)


def law_allocation(request: PlanRequest):
    """(PlanAllocation, the ScalingLaw) for the request's mode (module docstring)."""
    from planner.laws import load_law  # scipy/pandas: imported when a plan is made, not when one is read

    law = load_law(request.law)
    extra = {}
    mode = "compute-optimal"
    if request.target_loss is not None:
        answer = law.optimal_for_loss(request.target_loss)
        mode = "target-loss"
    elif request.inference_tokens:
        from planner.inference_aware import inference_optimal_for_budget

        answer = inference_optimal_for_budget(law, request.budget.flops, request.inference_tokens)
        mode = "inference-aware (Sardana et al. 2024): same loss as Chinchilla at C, least train+inference"
        extra["train_flops"] = answer.train_flops
    elif request.unique_tokens:
        from planner.data_constrained import data_constrained_law

        base = law if law.name != "muennighoff2023" else None
        answer = data_constrained_law(base).optimal(request.budget.flops, request.unique_tokens)
        mode = "data-constrained (Muennighoff et al. 2023)"
        extra["epochs"] = answer.epochs
    else:
        answer = law.optimal(request.budget.flops)
    a = answer.to_dict()
    allocation = PlanAllocation(law=law.name or str(request.law), law_source=law.source, mode=mode,
                                flops_convention="6ND (total N)", N=a.get("N"), D=a.get("D"), C=a.get("C"),
                                loss=a.get("loss"), tokens_per_param=a.get("tokens_per_param"),
                                ci=a.get("ci") or {}, **extra)
    return allocation, law
