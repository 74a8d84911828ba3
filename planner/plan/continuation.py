"""Continual pretraining: a plan that starts from a checkpoint instead of random weights.

Conventions. The plan's ``tokens`` are the *additional* tokens of this run; ``continue_from``
(``ContinueSpec`` in planner/plan/continue_spec.py, stored as ``training.continue_from``) says where the
checkpoint stands: ``tokens_seen`` (the law's D so far), ``iteration`` and ``global_batch`` (its
position on the trainer's step counter: consumed samples = iteration x global_batch, a constant
batch assumed, as Megatron-LM's ``consumed_train_samples`` counts without ``--rampup-batch-size``),
``optimizer`` kept (Adam moments, step counter, LR scheduler and data position restored) or fresh
(weights only), and the checkpoint's path.

The law's prediction for the continued run is ``law.predict(N, tokens_seen + tokens)``: the scaling
laws (Hoffmann et al. 2022; Besiroglu et al. 2024) were fitted on single uninterrupted runs, one
warmup and one decay over all D tokens, so the prediction reads the two runs as one such schedule.
A re-warmup from a decayed checkpoint, a fresh optimizer or a data distribution shift are outside
what was fitted; the plan says so in a warning.

The shape is the checkpoint's: a continued plan needs a pinned shape (a preset, or
``PlanRequest.shape``), and is one launch (no ``phases``: a multi-phase run continues through
phases with mode continue/rewarm, planner/plan/phases.py). The LR schedule of the new run is the
plan's training recipe (warmup, decay to ``min_lr`` over the new steps), started at the checkpoint's
position: the exporters place it on the trainer's counter (planner/export/megatron_phases.py
:func:`continued_run`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from planner.errors import UserError
from planner.plan.continue_spec import CONTINUE_OPTIMIZER
from planner.plan.continue_spec import check_continue_from as _check
from planner.plan.sections import PLAN_FIX, where

CONTINUE_FIX = "see `scaleplan plan --help` (--continue-from-tokens, --continue-from-iteration)"


def check_continue_from(d: Any) -> dict[str, Any]:
    """``training.continue_from`` (planner/plan/continue_spec.py ``ContinueSpec``), checked."""
    return _check(d, f"{where('training')}.continue_from", PLAN_FIX)


@dataclass(frozen=True, kw_only=True)
class ContinueFrom:
    """Where a continued run starts (module docstring); ``global_batch`` None: the plan's batch."""

    tokens_seen: int
    iteration: int
    global_batch: int | None = None
    optimizer: str = "kept"  # kept | fresh
    checkpoint: str | None = None
    law: str | None = None  # set by the plan: the law of its predicted loss

    @property
    def keeps_optimizer(self) -> bool:
        return self.optimizer == "kept"

    @property
    def consumed_samples(self) -> int:
        """Samples on the trainer's counter at the checkpoint (iteration x its global batch)."""
        if self.global_batch is None:
            raise UserError(f"continue_from has no global batch yet; {CONTINUE_FIX}")
        return self.iteration * self.global_batch

    def to_dict(self) -> dict[str, Any]:
        d = {"tokens_seen": self.tokens_seen, "iteration": self.iteration, "global_batch": self.global_batch,
             "optimizer": self.optimizer}
        return d | {k: v for k, v in (("checkpoint", self.checkpoint), ("law", self.law)) if v}

    @classmethod
    def of(cls, value: Any) -> "ContinueFrom | None":
        """``value`` as a ContinueFrom: one itself, a mapping of its fields, or None."""
        if value is None or isinstance(value, ContinueFrom):
            return value
        if not isinstance(value, dict):
            raise UserError(f"continue_from must be a mapping of tokens_seen, iteration, global_batch, optimizer, "
                            f"checkpoint, got {type(value).__name__}; {CONTINUE_FIX}")
        d = dict(value)
        if d.get("global_batch") is None:
            d.pop("global_batch", None)
            checked = check_continue_from({**d, "global_batch": 1})
            checked["global_batch"] = None
        else:
            checked = check_continue_from(d)
        return cls(**checked)


def check_request(request) -> ContinueFrom | None:
    """The request's continuation, refused (UserError, one line) where a continued plan cannot be made."""
    cont = ContinueFrom.of(request.continue_from)
    if cont is None:
        return None
    if cont.optimizer not in CONTINUE_OPTIMIZER:
        raise UserError(f"continue_from.optimizer must be one of {CONTINUE_OPTIMIZER}, got {cont.optimizer!r}")
    if request.shape is None:
        raise UserError("a continued run keeps its checkpoint's shape: pin it with --preset (or PlanRequest.shape); "
                        "a budget plan would search for a new shape no checkpoint has")
    if request.phases:
        raise UserError("a continued run is one launch and this plan has phases (a preset's or --phases); drop "
                        "--continue-from-* and continue the run with a phase of mode continue or rewarm, or use a "
                        "single-phase preset")
    if request.tokens is None and request.budget is None:
        raise UserError("a continued run needs the tokens it adds: give --tokens (the additional tokens, not the "
                        "total)")
    return cont


def resolved(cont: ContinueFrom, training, law_name: str) -> ContinueFrom:
    """``cont`` with its global batch defaulted to the plan's (the checkpoint ran at the same batch) and
    the name of the law that predicts its loss."""
    return replace(cont, global_batch=cont.global_batch or training.global_batch, law=law_name)


def continued_loss(law, params: float, tokens_seen: int, tokens: int) -> float:
    """The law's loss at N = ``params`` and D = ``tokens_seen + tokens`` (module docstring)."""
    return float(law.predict(params, tokens_seen + tokens))


def continuation_warnings(cont: ContinueFrom, *, law_name: str, params: float, tokens: int, loss: float,
                          seq_len: int) -> list[str]:
    """What the continued plan assumes: the law's reading of the two runs, and counter/token mismatches."""
    total = cont.tokens_seen + tokens
    out = [f"continued run: {law_name} predicts loss {loss:.4f} at N = {params:.4g} and D = {cont.tokens_seen:.4g} "
           f"seen + {tokens:.4g} new = {total:.4g} tokens; the law was fitted on single uninterrupted runs (one "
           "warmup, one decay over all D), so it reads these two runs as one such schedule: a re-warmup from a "
           "decayed checkpoint, " + ("a fresh optimizer, " if not cont.keeps_optimizer else "")
           + "or a change of data distribution is not in the fit"]
    counter_tokens = cont.consumed_samples * seq_len
    if abs(counter_tokens - cont.tokens_seen) >= cont.global_batch * seq_len:
        out.append(f"continue_from: iteration {cont.iteration:,} x global batch {cont.global_batch} x seq_len "
                   f"{seq_len} = {counter_tokens:.4g} tokens on the trainer's counter, but tokens_seen is "
                   f"{cont.tokens_seen:.4g}: the law uses tokens_seen, the exported schedule the counter "
                   "(a batch ramp-up or another sequence length before explains it; else fix one of them)")
    if cont.keeps_optimizer:
        out.append(f"continue_from: Megatron-LM resumes the data position (consumed_train_samples) at sample "
                   f"{cont.consumed_samples:,} and builds the dataset for --train-iters x --global-batch-size samples "
                   "counted from 0 (training.py get_train_valid_test_num_samples): a new dataset smaller than that "
                   "wraps into further shuffled epochs, so this run may repeat documents even when its own samples "
                   "would fit once; pass --fresh-optimizer to start the data at 0")
    return out


def training_with(training, cont: ContinueFrom):
    """The training recipe with ``continue_from`` recorded (plan.yaml ``training.continue_from``)."""
    return replace(training, continue_from=cont.to_dict())


def plan_continuation(plan) -> ContinueFrom | None:
    """The plan's continuation (None for a run from scratch)."""
    d = getattr(plan.training, "continue_from", None)
    return ContinueFrom.of(d) if d else None
