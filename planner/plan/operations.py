"""The run's operations: how often it logs, measures the validation loss and saves a checkpoint.

These are plan values, not exporter defaults, because the plan's claims depend on them: the
predicted loss is checkable mid-run only if the run evaluates (Megatron's ``--eval-iters 0`` never
does), and the time estimate charges the checkpoint writes the interval implies.

Eval cadence (``eval_cadence``):

* ``eval_iters`` evaluates at least ``EVAL_TOKENS`` tokens per evaluation. Per-token cross-entropy
  of a trained LM has a standard deviation of roughly 2-3 nats; the standard error of a mean over
  2**23 (8.4M) tokens is then about 0.001 nats even if neighbouring tokens were correlated over
  ~100-token spans, i.e. well below the 0.25% loss differences the plan reasons about.
* ``eval_interval`` keeps evaluation under ``EVAL_OVERHEAD`` of training compute (a forward pass
  costs a third of a training step's 6N FLOPs per token, Kaplan et al. 2020 §2.1), and gives at
  least ``MIN_EVALS`` and at most ``MAX_EVALS`` points on the loss curve (the point count wins
  over the overhead on runs too short for both).

Checkpoint interval: the Young/Daly optimum of planner/resilience.py (the plan's ``checkpoints``
section: size, write time, failure rate, disk, goodput) when given, else ``DEFAULT_SAVE_MINUTES``
of training rounded to whole steps.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from planner.plan.sections import PLAN_FIX, where
from planner.schema import check_record

EVAL_TOKENS = 2**23
EVAL_OVERHEAD = 0.01
MIN_EVALS = 20
MAX_EVALS = 200
#: Megatron-LM's own ``--log-interval`` default (megatron/training/arguments.py, _add_logging_args).
LOG_INTERVAL = 100
DEFAULT_SAVE_MINUTES = 60.0


@dataclass(frozen=True, kw_only=True)
class Operations:
    """Logging, evaluation and checkpoint cadence of the run, in optimizer steps."""

    log_interval: int
    eval_interval: int
    eval_iters: int  # global batches per evaluation
    eval_tokens: int  # tokens per evaluation (eval_iters x global batch x seq_len)
    save_interval: int
    save_interval_source: str  # "young-daly" | "default <minutes> min"
    predicted_loss: float | None = None  # the plan's law at the chosen (N, tokens): what eval should approach

    def to_dict(self) -> dict[str, Any]:
        return {"log_interval": self.log_interval, "eval_interval": self.eval_interval, "eval_iters": self.eval_iters,
                "eval_tokens": self.eval_tokens, "save_interval": self.save_interval,
                "save_interval_source": self.save_interval_source,
                **({"predicted_loss": self.predicted_loss} if self.predicted_loss is not None else {})}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Operations":
        rules = dict.fromkeys(("log_interval", "eval_interval", "eval_iters", "eval_tokens", "save_interval",
                               "predicted_loss"), "positive")
        return cls(**check_record(cls, d, where("operations"), fix=PLAN_FIX, rules=rules))


def eval_cadence(global_batch: int, seq_len: int, train_iters: int) -> tuple[int, int]:
    """(eval_interval, eval_iters) for a run of ``train_iters`` steps (module docstring)."""
    eval_iters = max(1, math.ceil(EVAL_TOKENS / (global_batch * seq_len)))
    cheapest = math.ceil(eval_iters / (3.0 * EVAL_OVERHEAD))  # eval forward = 1/3 of a train step
    sparsest = max(1, train_iters // MIN_EVALS)
    return min(max(cheapest, train_iters // MAX_EVALS, 1), sparsest), eval_iters


def plan_operations(*, global_batch: int, seq_len: int, train_iters: int, step_seconds: float | None,
                    checkpoint_interval_steps: int | None = None, predicted_loss: float | None = None
                    ) -> Operations:
    """The run's cadence: eval from the batch and length, checkpoints from Young/Daly when given."""
    eval_interval, eval_iters = eval_cadence(global_batch, seq_len, train_iters)
    if checkpoint_interval_steps is not None:
        save, source = int(checkpoint_interval_steps), "young-daly"
    else:
        steps = DEFAULT_SAVE_MINUTES * 60.0 / step_seconds if step_seconds else 1000
        save, source = int(max(1, round(steps))), f"default {DEFAULT_SAVE_MINUTES:g} min"
    return Operations(log_interval=min(LOG_INTERVAL, max(1, train_iters // 100)), eval_interval=eval_interval,
                      eval_iters=eval_iters, eval_tokens=eval_iters * global_batch * seq_len,
                      save_interval=min(save, train_iters), save_interval_source=source,
                      predicted_loss=predicted_loss)
