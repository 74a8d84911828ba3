"""Learning-rate schedules as *factors* of each parameter group's own base LR.

Convention: ``lr_factor(step, ...)`` returns f in [0, 1]; the trainer sets
``group["lr"] = group["base_lr"] * f`` where ``base_lr`` is the group's LR right after the
optimizer was built (MuAdamW has already divided hidden LRs by m_d). The schedule therefore acts
*relatively* on every group, as the mup README requires ("Current Limitations": never assign an
absolute LR to a MuAdam group).

``step`` counts optimizer updates from 0; the factor for step s is the one used for update s.

* warmup: linear from 1/warmup_steps to 1 over ``warmup_steps`` updates (all schedules).
* ``constant``: 1 after warmup.
* ``cosine``: half-cosine from 1 at the end of warmup to ``min_lr_frac`` at ``total_steps``.
* ``wsd`` (warmup-stable-decay, Hägele et al. 2024, arXiv:2405.18392): 1 until the last
  ``cooldown_frac`` of the run, then a cooldown to ``min_lr_frac``, shaped ``1-sqrt``
  (their best-performing shape, f = 1 - sqrt(progress)) or ``linear``.

WSD branches (``proxy_train.train.train_wsd_branches``) share one stable phase; the compute they
used is counted by :func:`wsd_branch_charges` only (run summary.json and the ladder's runs table).
"""
from __future__ import annotations

import math

SCHEDULES = ("cosine", "wsd", "constant")
COOLDOWN_SHAPES = ("1-sqrt", "linear")


def cooldown_start(total_steps: int, cooldown_frac: float) -> int:
    """First update of the WSD cooldown (the stable phase covers updates [warmup, start))."""
    return total_steps - int(round(cooldown_frac * total_steps))


def lr_factor(step: int, total_steps: int, *, schedule: str = "cosine", warmup_steps: int = 0,
              cooldown_frac: float = 0.2, min_lr_frac: float = 0.1, cooldown_shape: str = "1-sqrt") -> float:
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        span = max(1, total_steps - warmup_steps)
        progress = min(1.0, (step - warmup_steps) / span)
        return min_lr_frac + (1.0 - min_lr_frac) * 0.5 * (1.0 + math.cos(math.pi * progress))
    if schedule == "wsd":
        start = max(warmup_steps, cooldown_start(total_steps, cooldown_frac))
        if step < start:
            return 1.0
        span = max(1, total_steps - start)
        progress = min(1.0, (step - start + 1) / span)
        shape = 1.0 - math.sqrt(progress) if cooldown_shape == "1-sqrt" else 1.0 - progress
        return min_lr_frac + (1.0 - min_lr_frac) * shape
    raise ValueError(f"unknown schedule {schedule!r}")


def wsd_branch_charges(branches: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Tokens each WSD branch adds to the compute of its shared stable phase.

    ``branches``: (tokens trained, stable-phase end in tokens) per branch of one stable phase.
    Returns, in the same order, (stable tokens between the previous branch point and this one's,
    this branch's own cooldown tokens). Summed over the branches: the stable phase once plus every
    cooldown. A branch that stopped inside the stable phase (diverged: tokens < stable end) is
    charged only what was trained up to where it stopped.
    """
    charges: list[tuple[int, int]] = [(0, 0)] * len(branches)
    reached_before = 0
    for i in sorted(range(len(branches)), key=lambda j: branches[j][0]):
        tokens, stable_end = branches[i]
        reached = min(tokens, stable_end)
        charges[i] = (max(0, reached - reached_before), max(0, tokens - stable_end))
        reached_before = max(reached_before, reached)
    return charges
