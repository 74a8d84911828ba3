"""Law sensitivity: what every published law says about the plan's budget and its chosen (N, D).

Published Chinchilla-form fits disagree by 2x and more on N* at the same compute (Besiroglu et al.
2024 vs Hoffmann et al. 2022's rounded constants; Muennighoff et al. 2023 on C4), so a plan states
its answer under each of them, and what its own choice would cost if that law were the true one.

Conventions: each law allocates the plan's budget C as C = 6 N D (total N), as the allocation step
does. The penalty of the chosen model (N parameters, D tokens) under a law is its loss relative to
that law's optimum at the *same* 6 N D compute, so it measures the allocation alone (not the small
difference between 6ND and Megatron's FLOPs). Absolute losses of laws fitted on different data
and tokenizers are not comparable with each other (muennighoff2023: C4, GPT-2 tokenizer); the
penalties and tokens/param are.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from planner.plan.sections import PLAN_FIX, where
from planner.schema import check_record


@dataclass(frozen=True, kw_only=True)
class LawView:
    """One law's optimum for the budget and its verdict on the plan's (N, D)."""

    law: str
    N: float  # the law's N* for the budget
    D: float
    tokens_per_param: float
    loss: float  # at the law's optimum, nats
    chosen_loss: float  # the plan's (N, D) under this law
    penalty: float  # chosen_loss / (the law's optimal loss at 6ND of the chosen run) - 1

    def to_dict(self) -> dict[str, Any]:
        return {"law": self.law, "N": self.N, "D": self.D, "tokens_per_param": self.tokens_per_param,
                "loss": self.loss, "chosen_loss": self.chosen_loss, "penalty": self.penalty}

    @classmethod
    def from_dict(cls, d: dict[str, Any], name: str = "sensitivity") -> "LawView":
        rules = {**dict.fromkeys(("N", "D", "tokens_per_param", "loss", "chosen_loss"), "positive"),
                 "penalty": "nonneg"}
        return cls(**check_record(cls, d, where(name), fix=PLAN_FIX, rules=rules))


def law_sensitivity(budget_flops: float, params: float, tokens: float, plan_law: Any = None) -> list[LawView]:
    """Every published law's view (the plan's own law first when it is not one of them)."""
    from planner.laws import PRESETS, load_law  # numpy/scipy: loaded when a plan is made

    laws = [dataclasses.replace(v) for v in PRESETS.values()]
    if plan_law is not None:
        own = load_law(plan_law)
        if own.name not in PRESETS:
            laws.insert(0, own)
    return [_view(law, budget_flops, params, tokens) for law in laws]


def _view(law, budget_flops: float, params: float, tokens: float) -> LawView:
    best = law.optimal(budget_flops, interval=None)
    chosen = float(law.predict(params, tokens))
    same_compute = law.optimal(6.0 * params * tokens, interval=None)
    return LawView(law=law.name, N=float(best.N), D=float(best.D), tokens_per_param=float(best.tokens_per_param),
                   loss=float(best.loss), chosen_loss=chosen, penalty=max(0.0, chosen / float(same_compute.loss) - 1))
