"""The catalogue of scaling laws: published presets with their sources, and ``load_law``.

The law itself (:class:`ScalingLaw`: L(N, D) = E + A / N^alpha + B / D^beta, its predictions,
compute-optimal allocations and intervals) lives in :mod:`planner.scaling_law` and is re-exported
here; a fit.json is read through :class:`planner.fit_result.FitResult`.

Conventions (docs/CONTRACTS.md): L in nats per token, N parameters (the presets use total
parameters, as Hoffmann et al. 2022), D tokens, C = k N D FLOPs (k = 6 unless given).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from planner.errors import UserError, positive_number
from planner.fit_result import FitResult
from planner.io import read_json
from planner.scaling_law import PARAM_NAMES, Allocation, Prediction, ScalingLaw


def shape_flops_ratio(shape: Any, convention: str = "megatron") -> float:
    """k = FLOPs per token / total parameters of a ``planner.shape.ModelShape`` (C = k N D)."""
    return float(shape.flops_per_token(convention)) / float(shape.total_params)


# -- published laws ----------------------------------------------------------------------------
PRESETS: dict[str, ScalingLaw] = {
    "hoffmann2022": ScalingLaw(
        E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28, name="hoffmann2022",
        source="Hoffmann et al. 2022, 'Training Compute-Optimal Large Language Models' "
               "(arXiv:2203.15556), Sec. 3.3 and App. D.2, Approach 3; N = total parameters, MassiveText"),
    "besiroglu2024": ScalingLaw(
        E=1.8172, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658, name="besiroglu2024",
        source="Besiroglu et al. 2024, 'Chinchilla Scaling: A replication attempt' (arXiv:2404.10102), "
               "eq. (4): Approach 3 refit on data extracted from Hoffmann et al. Fig. 4"),
    "sardana2024": ScalingLaw(
        E=1.69, A=406.4, B=410.7, alpha=0.336, beta=0.283, name="sardana2024",
        source="Sardana et al. 2024, 'Beyond Chinchilla-Optimal' (arXiv:2401.00448), Sec. 2: Chinchilla "
               "Approach 3 with the exponents to three digits (alpha 0.336, beta 0.283)"),
    "muennighoff2023": ScalingLaw(
        E=math.exp(0.6254804), A=math.exp(6.255414), B=math.exp(7.3049974),
        alpha=0.3526596, beta=0.3526596, name="muennighoff2023",
        source="Muennighoff et al. 2023, 'Scaling Data-Constrained Language Models' (arXiv:2305.16264): "
               "base Chinchilla-form fit on C4 (GPT-2 tokenizer), huggingface/datablations README "
               "'Parametric Fit' (a=6.255414, b=7.3049974, e=0.6254804, alpha=beta=0.3526596)"),
}


#: The law a plan uses unless told otherwise. Hoffmann et al.'s published Approach-3 constants
#: (``hoffmann2022``) put the optimum at ~50 tokens/param at 1e21 FLOPs and ~120 at 1e25, which
#: contradicts their own Approaches 1 and 2 (~20 tokens/param, Table 3 and Fig. 1); Besiroglu et al.
#: 2024 (arXiv:2404.10102, §4 and Table 1) refit Approach 3 on the same data and recover ~20
#: tokens/param, consistent with Approaches 1-2 and with how Chinchilla itself was trained (70B
#: parameters on 1.4T tokens, 20 tokens/param). ``hoffmann2022`` stays selectable by name.
DEFAULT_LAW = "besiroglu2024"


def list_presets() -> list[dict[str, Any]]:
    """Each preset's name, parameters and source (for `scaleplan optimal --list-laws`)."""
    return [{"name": k, **{p: getattr(v, p) for p in PARAM_NAMES}, "source": v.source, "default": k == DEFAULT_LAW}
            for k, v in PRESETS.items()]


def load_law(name_or_path: str | Path | ScalingLaw) -> ScalingLaw:
    """A preset by name (``hoffmann2022``, ...) or a fit.json written by ``scaleplan fit``."""
    if isinstance(name_or_path, ScalingLaw):
        return name_or_path
    text = str(name_or_path)
    if text in PRESETS:
        return dataclasses.replace(PRESETS[text])
    path = Path(text)
    if path.suffix.lower() == ".json" or path.exists():
        result = FitResult.from_dict(read_json(path, what="law file"), where=f"law file {path}")
        law = result.law
        if result.backtest is not None:  # the plan states the backtest error at its extrapolation factor
            law.meta = {**law.meta, "backtest": result.backtest.summary()}
        if not law.name:
            law.name = path.stem if path.stem != "fit" else str(path)
        return law
    raise UserError(f"unknown law {text!r}; use a preset ({', '.join(PRESETS)}) or a fit.json path "
                    "(see `scaleplan optimal --list-laws`)")


# -- Kaplan et al. 2020, for comparison only (not a Chinchilla-form law) -----------------------
@dataclass(frozen=True)
class KaplanLaw:
    """Kaplan et al. 2020 ('Scaling Laws for Neural Language Models', arXiv:2001.08361), Table 5
    / eqs. (1.1)-(1.2) and (1.7)/Sec. 6: single-variable power laws in *non-embedding* parameters
    N and tokens D, loss in nats (their WebText2 tokenizer). Not comparable to Chinchilla-form
    laws in absolute terms; kept for the exponents.

    L(N) = (N_c / N)^alpha_N,  L(D) = (D_c / D)^alpha_D;  compute-efficient N_opt ∝ C^0.73.
    """

    alpha_N: float = 0.076
    N_c: float = 8.8e13
    alpha_D: float = 0.095
    D_c: float = 5.4e13
    n_opt_exponent: float = 0.73
    source: str = ("Kaplan et al. 2020, arXiv:2001.08361, eqs. (1.1), (1.2) and Sec. 6.1 (N ∝ C_min^0.73); "
                   "N excludes embeddings")

    def loss_vs_params(self, N):
        return (self.N_c / np.asarray(N, dtype=float)) ** self.alpha_N

    def loss_vs_tokens(self, D):
        return (self.D_c / np.asarray(D, dtype=float)) ** self.alpha_D


KAPLAN2020 = KaplanLaw()

__all__ = ["ScalingLaw", "Allocation", "Prediction", "PARAM_NAMES", "PRESETS", "DEFAULT_LAW", "list_presets", "load_law",
           "shape_flops_ratio", "KaplanLaw", "KAPLAN2020", "positive_number"]
