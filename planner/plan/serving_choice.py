"""The serving constraint: N capped so that the model serves on a stated GPU (``--serve-on``).

LLM360 (Amber, K2) advise choosing a size that runs well on the target inference hardware ("7B on
a single A100"). With ``serve_on`` the allocation's N* becomes min(N*, n_max), where n_max is the
largest searched shape whose weights plus KV cache fit the GPU at the plan's sequence length and
``SERVE_BATCH`` sequences (planner/serving.py), and D = C / 6N. The plan records the cap and its
cost in predicted loss (the law's loss at the capped allocation vs the unconstrained optimum).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from planner.plan.request import DEFAULT_VOCAB, PlanRequest
from planner.plan.sections import PLAN_FIX, PlanAllocation, where
from planner.schema import check_record

#: Sequences served at once when the plan checks the KV cache: one, the single-user case the
#: LLM360 advice is about; the KV cache grows linearly with it (planner/serving.py).
SERVE_BATCH = 1


@dataclass(frozen=True, kw_only=True)
class ServingConstraint:
    """The serving cap and what it costs (plan.yaml section ``serving``)."""

    target: str  # GPU,weights dtype,kv dtype
    context: int
    batch: int
    n_max: float  # largest total parameters that serve on the target
    n_opt: float  # the unconstrained N*
    loss_opt: float
    n: float  # the allocation's N after the cap
    loss: float
    penalty: float  # loss / loss_opt - 1
    binding: bool

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ServingConstraint":
        rules = {**dict.fromkeys(("context", "batch", "n_max", "n_opt", "loss_opt", "n", "loss"), "positive"),
                 "penalty": "nonneg"}
        return cls(**check_record(cls, d, where("serving"), fix=PLAN_FIX, rules=rules))


def cap_for_serving(request: PlanRequest, allocation: PlanAllocation) -> tuple[PlanAllocation, ServingConstraint]:
    """(the allocation with N <= n_max, the constraint); unchanged allocation when the cap does not bind."""
    from planner.laws import load_law
    from planner.serving import max_serving_params, parse_serve_on, serving_cost

    target = parse_serve_on(request.serve_on)
    limit = max_serving_params(target, context=int(request.seq_len), batch=SERVE_BATCH,
                               vocab_size=int(request.vocab or DEFAULT_VOCAB))
    law = load_law(request.law)
    cost = serving_cost(law, allocation.C, limit.n_max)
    constraint = ServingConstraint(target=target.label, context=int(request.seq_len), batch=SERVE_BATCH,
                                   n_max=float(limit.n_max), n_opt=cost.n_opt, loss_opt=cost.loss_opt, n=cost.n,
                                   loss=cost.loss, penalty=cost.loss / cost.loss_opt - 1.0, binding=cost.binding)
    if cost.binding:
        allocation = dataclasses.replace(allocation, N=cost.n, D=cost.d, loss=cost.loss, tokens_per_param=cost.d / cost.n,
                                         mode=f"{allocation.mode}, N capped to serve on {target.label}")
    return allocation, constraint
