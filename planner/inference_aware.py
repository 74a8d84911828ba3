"""Inference-aware model sizing: Sardana et al. 2024, 'Beyond Chinchilla-Optimal: Accounting for
Inference in Language Model Scaling Laws' (arXiv:2401.00448), Sec. 2.

A model that will serve D_inf tokens costs, in total,

    cost(N, D_tr) = 6 N D_tr + 2 N D_inf        (FLOPs; training fwd+bwd, inference fwd only)

Sardana et al. minimise this subject to reaching a quality target L(N, D_tr) = loss. On that
iso-loss curve D_tr is a function of N,

    D_tr(N) = (B / (loss - E - A / N^alpha))^(1/beta),   defined for N > (A / (loss - E))^(1/alpha),

so the problem is one-dimensional in N; we minimise it over log N (bounded Brent). With D_inf = 0
the answer is the Chinchilla-optimal allocation for that loss. The more inference, the smaller
and longer-trained the model.

``inference_optimal_for_budget`` is the form the planner uses: the user gives a training budget C
and the expected inference tokens; we take the quality target to be the loss that C would reach
at Chinchilla-optimality, loss = L*(C), and solve the problem above. The answer reaches the same
loss as the Chinchilla model of budget C, with more training compute and less total compute.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from scipy import optimize

from planner.errors import nonneg_number, positive_number
from planner.scaling_law import Allocation, ScalingLaw

TRAIN_FLOPS_PER_TOKEN_PER_PARAM = 6.0  # forward + backward (Kaplan et al. 2020, Sec. 2.1)
INFERENCE_FLOPS_PER_TOKEN_PER_PARAM = 2.0  # forward only (ibid.; Sardana et al. 2024, eq. 2)


@dataclass
class InferenceAllocation:
    """The inference-aware model and its Chinchilla counterpart at the same loss.

    ``N`` params, ``D`` training tokens, ``loss`` nats, ``inference_tokens`` served tokens;
    FLOPs: ``train_flops`` = 6 N D, ``inference_flops`` = 2 N D_inf, ``total_flops``.
    ``chinchilla`` is the compute-optimal allocation reaching the same loss; ``savings_flops``
    = its total cost (training + the same inference) minus ours; ``savings_frac`` the fraction.
    """

    N: float
    D: float
    loss: float
    inference_tokens: float
    train_flops: float
    inference_flops: float
    total_flops: float
    tokens_per_param: float
    chinchilla: Allocation
    chinchilla_total_flops: float
    savings_flops: float
    savings_frac: float
    law: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["chinchilla"] = self.chinchilla.to_dict()
        return d


def _tokens_for_loss(law: ScalingLaw, N: float, loss: float) -> float:
    """Training tokens at which an N-parameter model reaches ``loss`` (inf if it never does)."""
    gap = loss - law.E - law.A / N ** law.alpha
    if gap <= 0:
        return math.inf
    return (law.B / gap) ** (1.0 / law.beta)


def inference_optimal(law: ScalingLaw, loss: float, inference_tokens: float, *,
                      train_flops_per_token_per_param: float = TRAIN_FLOPS_PER_TOKEN_PER_PARAM,
                      inference_flops_per_token_per_param: float = INFERENCE_FLOPS_PER_TOKEN_PER_PARAM,
                      ) -> InferenceAllocation:
    """N, D_tr minimising k_tr N D_tr + k_inf N D_inf subject to L(N, D_tr) = loss (Sardana 2024)."""
    loss = law.reachable_loss(loss)
    d_inf = nonneg_number(inference_tokens, "inference tokens")
    k_tr = positive_number(train_flops_per_token_per_param, "training FLOPs per token per parameter")
    k_inf = positive_number(inference_flops_per_token_per_param, "inference FLOPs per token per parameter")

    chin = law.optimal_for_loss(loss, k_tr)
    n_min = (law.A / (loss - law.E)) ** (1.0 / law.alpha)  # below this N the loss is never reached

    def cost(logn: float) -> float:
        n = math.exp(logn)
        return k_tr * n * _tokens_for_loss(law, n, loss) + k_inf * n * d_inf

    # The optimum lies between the smallest feasible N and the Chinchilla N (more inference
    # can only make the model smaller); search in log space just above n_min.
    lo = math.log(n_min) + 1e-9
    hi = math.log(chin.N) + 1e-6
    res = optimize.minimize_scalar(cost, bounds=(lo, hi), method="bounded", options={"xatol": 1e-10})
    N = math.exp(res.x)
    D = _tokens_for_loss(law, N, loss)
    if d_inf == 0 or cost(hi) <= res.fun:  # no inference (or negligible): Chinchilla is optimal
        N, D = chin.N, chin.D
    train = k_tr * N * D
    inf = k_inf * N * d_inf
    chin_total = chin.C + k_inf * chin.N * d_inf
    total = train + inf
    return InferenceAllocation(
        N=N, D=D, loss=loss, inference_tokens=d_inf, train_flops=train, inference_flops=inf,
        total_flops=total, tokens_per_param=D / N, chinchilla=chin, chinchilla_total_flops=chin_total,
        savings_flops=chin_total - total, savings_frac=(chin_total - total) / chin_total, law=law.name)


def inference_optimal_for_budget(law: ScalingLaw, C: float, inference_tokens: float,
                                 **kw: float) -> InferenceAllocation:
    """Same quality as the Chinchilla-optimal model of training budget C, cheapest in total.

    Solves ``inference_optimal(law, law.optimal(C).loss, inference_tokens)``: the returned
    model reaches the loss L*(C) and minimises training + inference FLOPs; its training
    compute (``train_flops``) exceeds C whenever inference_tokens > 0.
    """
    C = positive_number(C, "compute budget C (FLOPs)")
    k_tr = kw.get("train_flops_per_token_per_param", TRAIN_FLOPS_PER_TOKEN_PER_PARAM)
    return inference_optimal(law, law.optimal(C, k_tr).loss, inference_tokens, **kw)
