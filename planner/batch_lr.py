"""Compute-optimal learning rate and batch size as power laws in compute.

DeepSeek LLM (DeepSeek-AI 2024, arXiv:2401.02954, Sec. 3.1, eq. 1) fits, on their IsoFLOP
hyperparameter sweeps,

    eta_opt = 0.3118 * C^(-0.1250)        (peak learning rate, AdamW, their multi-step schedule)
    B_opt   = 0.2920 * C^( 0.3271)        (batch size in tokens)

with C = M * D, D training tokens and M the *non-embedding* FLOPs per token (their eq. 2):

    M = 72 L d^2 + 12 L d l_seq           (L layers, d model width, l_seq sequence length)

which counts attention but not the vocabulary projection. Near the optimum their loss surface
is flat over a broad band of (eta, B) (their Fig. 3), so these are centres, not sharp optima.

``PowerLaw.fit`` / ``fit_batch_lr`` refit y = c * C^e from our own sweep results (log-log least
squares, with 95% t-intervals), so a study can replace the preset.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
from scipy import stats

from planner.errors import UserError, positive_number


def deepseek_flops_per_token(n_layers: int, d_model: int, seq_len: int) -> float:
    """DeepSeek's M = 72 L d^2 + 12 L d l_seq (non-embedding training FLOPs per token)."""
    L, d, s = (positive_number(v, name)
               for v, name in ((n_layers, "n_layers"), (d_model, "d_model"), (seq_len, "seq_len")))
    return 72.0 * L * d * d + 12.0 * L * d * s


@dataclass(frozen=True)
class PowerLaw:
    """y = coef * C^exponent; ``ci`` holds 95% intervals for 'coef' and 'exponent' when fitted."""

    coef: float
    exponent: float
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    n: int = 0

    def __call__(self, C):
        out = self.coef * np.asarray(C, dtype=float) ** self.exponent
        return float(out) if np.ndim(out) == 0 else out

    @classmethod
    def fit(cls, C: Iterable[float], y: Iterable[float]) -> "PowerLaw":
        """Least squares of log y on log C; 95% t-intervals (needs >= 3 distinct C)."""
        x = np.log(np.asarray(list(C), dtype=float))
        v = np.asarray(list(y), dtype=float)
        if len(x) != len(v):
            raise UserError(f"compute and values differ in length ({len(x)} vs {len(v)})")
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(v)) and np.all(v > 0)):
            raise UserError("compute and values must be positive finite numbers; drop failed runs first")
        if len(np.unique(x)) < 3:
            raise UserError(f"need runs at >= 3 distinct compute budgets to fit a power law, got "
                            f"{len(np.unique(x))}; sweep more budgets")
        res = stats.linregress(x, np.log(v))
        dof = len(x) - 2
        t = stats.t.ppf(0.975, dof)
        ci = {"exponent": (float(res.slope - t * res.stderr), float(res.slope + t * res.stderr)),
              "coef": (math.exp(res.intercept - t * res.intercept_stderr),
                       math.exp(res.intercept + t * res.intercept_stderr))}
        return cls(coef=math.exp(res.intercept), exponent=float(res.slope), ci=ci, n=len(x))

    def to_dict(self) -> dict[str, Any]:
        return {"coef": self.coef, "exponent": self.exponent, "ci": {k: list(v) for k, v in self.ci.items()},
                "n": self.n}


@dataclass(frozen=True)
class BatchLRLaw:
    """Compute-optimal peak LR and batch size (tokens) as power laws of C = M * D."""

    lr: PowerLaw
    batch: PowerLaw
    name: str = ""
    source: str = ""

    def optimal_lr(self, C) -> float:
        return self.lr(positive_number(C, "compute C (FLOPs)"))

    def optimal_batch_tokens(self, C) -> float:
        return self.batch(positive_number(C, "compute C (FLOPs)"))

    def for_model(self, n_layers: int, d_model: int, seq_len: int, tokens: float) -> dict[str, float]:
        """eta_opt and B_opt for a model of L layers, width d, sequence length, trained on tokens."""
        M = deepseek_flops_per_token(n_layers, d_model, seq_len)
        C = M * positive_number(tokens, "training tokens")
        return {"flops_per_token": M, "C": C, "lr": self.optimal_lr(C),
                "batch_tokens": self.optimal_batch_tokens(C),
                "batch_sequences": self.optimal_batch_tokens(C) / seq_len}

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "lr": self.lr.to_dict(), "batch": self.batch.to_dict()}


DEEPSEEK2024 = BatchLRLaw(
    lr=PowerLaw(0.3118, -0.1250), batch=PowerLaw(0.2920, 0.3271), name="deepseek2024",
    source="DeepSeek-AI 2024, 'DeepSeek LLM: Scaling Open-Source Language Models with Longtermism' "
           "(arXiv:2401.02954), Sec. 3.1 eq. (1); C = M D with M = 72 L d^2 + 12 L d l_seq (eq. 2)")

PRESETS: dict[str, BatchLRLaw] = {"deepseek2024": DEEPSEEK2024}


def load_batch_lr_law(name: str) -> BatchLRLaw:
    if name not in PRESETS:
        raise UserError(f"unknown LR/batch law {name!r}; use one of {', '.join(PRESETS)}")
    return PRESETS[name]


def fit_batch_lr(C: Iterable[float], best_lr: Iterable[float], best_batch_tokens: Iterable[float],
                 name: str = "fitted") -> BatchLRLaw:
    """Fit eta_opt = a C^b and B_opt = c C^d from sweep rows (compute, best LR, best batch)."""
    C = list(C)
    return BatchLRLaw(lr=PowerLaw.fit(C, best_lr), batch=PowerLaw.fit(C, best_batch_tokens), name=name,
                      source=f"log-log least squares on {len(C)} sweep optima")


# Our heuristic, not a published threshold: DeepSeek's Fig. 3 shows a near-optimal band spanning
# roughly a factor of a few around B_opt; beyond 4x either way we warn.
BATCH_WARN_FACTOR = 4.0


def batch_warning(batch_tokens: float, C: float, law: BatchLRLaw = DEEPSEEK2024,
                  factor: float = BATCH_WARN_FACTOR) -> str | None:
    """A one-line warning when the batch is more than ``factor`` x off the law's B_opt, else None."""
    b = positive_number(batch_tokens, "batch size (tokens)")
    opt = law.optimal_batch_tokens(C)
    if b > factor * opt:
        return (f"batch {b:.3g} tokens is {b / opt:.1f}x the compute-optimal {opt:.3g} ({law.name}); "
                "beyond the critical batch size extra data-parallelism buys little loss per FLOP")
    if b < opt / factor:
        return (f"batch {b:.3g} tokens is {opt / b:.1f}x below the compute-optimal {opt:.3g} ({law.name}); "
                "training will take more optimizer steps than needed")
    return None
