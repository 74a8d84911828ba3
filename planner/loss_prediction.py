"""The loss a scaling law predicts for one model trained on a given number of tokens.

Conventions: loss in nats per token; N is the parameter count *in the convention the law was fitted
on*: total parameters for the published presets (Hoffmann et al. 2022 count all parameters,
embeddings included; Besiroglu et al. 2024 re-fit the same data), and ``meta.n_col`` of a fit.json
(``non_embedding_params`` or ``total_params``) for a law fitted by ``scaleplan fit``. D is training
tokens, C = 6·N·D (the laws' own compute convention). The interval is the 95 % parameter interval
over the law's bootstrap samples (fit.json stores samples, not residuals); a preset has none.

Beside the point value this reports what the same compute would reach at the law's optimal
allocation, so a user sees how far the model is from compute-optimal (the loss penalty, in nats and
relative) and its tokens per parameter.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from planner.errors import UserError, positive_number
from planner.scaling_law import ScalingLaw
from planner.shape import ModelShape

#: fit.json ``meta.n_col`` values that mean "count parameters without the embeddings".
NON_EMBEDDING_COLUMNS = ("non_embedding_params", "non_embedding", "n_non_embedding")


@dataclass
class LossPrediction:
    """The law's loss for (N, D), its interval, and the compute-optimal loss at the same C = 6ND."""

    law: str
    params: float
    params_convention: str  # "total" | "non-embedding" | "given"
    tokens: float
    compute: float
    loss: float
    interval: str | None
    lo: float | None
    hi: float | None
    tokens_per_param: float
    optimal_params: float
    optimal_tokens: float
    optimal_loss: float

    @property
    def penalty(self) -> float:
        """Loss above the compute-optimal allocation of the same compute (nats, >= 0 up to rounding)."""
        return self.loss - self.optimal_loss

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "penalty": self.penalty,
                "penalty_rel": self.penalty / self.optimal_loss}


def law_counts_non_embedding(law: ScalingLaw) -> bool:
    """Whether the law's N excludes embeddings (a fit on ``non_embedding_params``)."""
    return str((law.meta or {}).get("n_col", "")) in NON_EMBEDDING_COLUMNS


def model_params(law: ScalingLaw, shape: ModelShape | None, params: float | None) -> tuple[float, str]:
    """N for the law: an explicit count as given, else the shape's count in the law's convention."""
    if (shape is None) == (params is None):
        raise UserError("give the model either as a parameter count or as a shape (preset, HF config, sizes)")
    if params is not None:
        return positive_number(params, "parameter count"), "given"
    if law_counts_non_embedding(law):
        return float(shape.non_embedding_params), "non-embedding"
    return float(shape.total_params), "total"


def predict_loss(law: ScalingLaw, tokens: float, *, shape: ModelShape | None = None,
                 params: float | None = None) -> LossPrediction:
    """The loss ``law`` predicts for the model (a shape or a count) trained on ``tokens`` tokens."""
    D = positive_number(tokens, "training tokens")
    N, convention = model_params(law, shape, params)
    C = 6.0 * N * D
    interval = "parameter" if law.samples is not None else None
    point = law.predict(N, D, interval=interval)
    value, lo, hi = (point.value, point.lo, point.hi) if interval else (point, None, None)
    best = law.optimal(C, interval=None)
    return LossPrediction(law=law.name, params=N, params_convention=convention, tokens=D, compute=C,
                          loss=float(value), interval=interval, lo=lo, hi=hi, tokens_per_param=D / N,
                          optimal_params=best.N, optimal_tokens=best.D, optimal_loss=best.loss)


__all__ = ["LossPrediction", "predict_loss", "model_params", "law_counts_non_embedding"]
