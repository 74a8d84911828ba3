"""The schema of plan.yaml's ``training.continue_from`` (continual pretraining), kept apart from
planner/plan/continuation.py so that the plan reader (planner/plan/sections.py) can check it
without importing the planning code. Meaning of each field: continuation.py's module docstring.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from planner.schema import check_record

#: Whether a continued run keeps the checkpoint's optimizer state.
CONTINUE_OPTIMIZER = ("kept", "fresh")


@dataclass(frozen=True, kw_only=True)
class ContinueSpec:
    """``training.continue_from``: the checkpoint's tokens seen, its iteration and global batch on the
    trainer's counter, optimizer kept | fresh, its path, and the ``law`` whose loss at tokens_seen +
    tokens ``operations.predicted_loss`` holds (written only for a continued run)."""

    tokens_seen: int
    iteration: int
    global_batch: int
    optimizer: str = "kept"
    checkpoint: str | None = None
    law: str | None = None


def check_continue_from(d: Any, where: str, fix: str) -> dict[str, Any]:
    """``d`` checked against :class:`ContinueSpec` (UserError "``where``.field ...; ``fix``")."""
    rules = {"tokens_seen": "positive", "iteration": "positive", "global_batch": "positive",
             "optimizer": CONTINUE_OPTIMIZER}
    return dict(check_record(ContinueSpec, d, where, fix=fix, rules=rules))
