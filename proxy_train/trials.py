"""Trial states of a sweep: which trials count towards ``--trials N``, and the counts.

Conventions (what ``--trials N`` means):

* A trial is **finished** when it is COMPLETE or PRUNED (a diverged proxy run is pruned, with the
  reason in the user attribute ``fail_reason``). A study stops when it holds ``N`` finished trials.
  With ``count_failed=True`` (the μTransfer grid, where every grid point must be visited once)
  trials that FAILED with a real error count too.
* Trials that FAILED because their process was killed (``fail_reason`` starting ``killed``) or
  interrupted (``interrupted``) do not count: they are retried with the same parameters. A trial
  given up because other workers already fill the target starts with ``surplus`` and is ignored.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

# fail_reason prefixes of trials that are retried (not real errors) or ignored (surplus).
KILLED = "killed"
INTERRUPTED = "interrupted"
SURPLUS = "surplus"
RETRIABLE = (KILLED, INTERRUPTED)


class Surplus(Exception):
    """This trial is not needed: other workers already fill the last slots."""


def fail_reason(t) -> str:
    return str(t.user_attrs.get("fail_reason", "") or "")


def is_real_error(reason: str) -> bool:
    """A failure that is neither a killed/interrupted run (retried) nor a surplus trial (ignored)."""
    return not reason.startswith(RETRIABLE + (SURPLUS,))


def is_counted(t, count_failed: bool = False) -> bool:
    """Whether a trial counts towards ``--trials N`` (see the module docstring)."""
    from optuna.trial import TrialState

    if t.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    if count_failed and t.state == TrialState.FAIL:
        reason = fail_reason(t)
        return bool(reason) and is_real_error(reason)
    return False


@dataclass
class TrialCounts:
    """Trials of a study by state; ``finished`` counts towards the target, ``errors`` are FAILs
    with a real error (not killed, interrupted or surplus)."""

    finished: int = 0
    running: int = 0
    waiting: int = 0
    complete: int = 0
    pruned: int = 0
    failed: int = 0
    errors: int = 0

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def counts(study, count_failed: bool = False) -> TrialCounts:
    """Count the trials of an Optuna study (see :class:`TrialCounts`)."""
    from optuna.trial import TrialState

    out = TrialCounts()
    for t in study.get_trials(deepcopy=False):
        out.finished += is_counted(t, count_failed)
        out.running += t.state == TrialState.RUNNING
        out.waiting += t.state == TrialState.WAITING
        out.complete += t.state == TrialState.COMPLETE
        out.pruned += t.state == TrialState.PRUNED
        if t.state == TrialState.FAIL:
            out.failed += 1
            out.errors += is_real_error(fail_reason(t))
    return out


@dataclass
class BestTrial:
    """The COMPLETE trial with the lowest final validation loss (nats/token)."""

    number: int
    value: float
    params: dict          # as sampled (width and param too when they were sampled)
    width: int | None     # the proxy width it ran at (user attribute; None for foreign studies)
    param: str | None     # mup | sp (user attribute)
    user_attrs: dict

    @classmethod
    def of(cls, study) -> "BestTrial | None":
        from optuna.trial import TrialState

        done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
        if not done:
            return None
        t = min(done, key=lambda t: t.value)
        return cls(number=t.number, value=t.value, params=dict(t.params), width=t.user_attrs.get("width"),
                   param=t.user_attrs.get("param"), user_attrs=dict(t.user_attrs))

    def to_dict(self) -> dict:
        """The ``best`` block of a sweep summary."""
        return {"trial": self.number, "val_loss": self.value, "params": self.params, "width": self.width,
                "param": self.param}


def best_value(study) -> float | None:
    best = BestTrial.of(study)
    return best.value if best is not None else None
