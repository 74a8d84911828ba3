"""The objective of a sweep trial: sample, run one proxy, turn every failure into a reason.

Conventions:

* Objective: the final validation loss (nats/token) of a proxy run (``proxy_train.train.train``);
  intermediate validation losses are reported at each evaluation with ``step`` = optimizer step,
  for pruning.
* A diverged run (loss NaN/inf or exploding) becomes a PRUNED trial with ``fail_reason``
  ``diverged: ...``; Ctrl-C leaves ``interrupted: ...`` (retried on rerun); any other exception a
  FAIL with ``error: ...`` (see :mod:`proxy_train.trials`).
* ``objective: /path/file.py:function`` (a hidden CLI option) swaps the proxy run for a function
  of a :class:`TrialContext`; the tests use timed stand-ins (tests/sweep_objectives.py).
"""
from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from planner.errors import UserError
from proxy_train.study import StudySpec, train_config
from proxy_train.sweep_space import suggest
from proxy_train.trials import INTERRUPTED, Surplus


class Diverged(Exception):
    """The proxy run diverged (loss NaN/inf or exploding): becomes a PRUNED trial with the reason."""


@dataclass
class TrialContext:
    """What an objective function gets: the trial, its hyperparameters and where to write."""

    trial: Any
    hp: dict            # lr, init_std, alpha_out, alpha_in, warmup_frac (+ weight_decay)
    width: int
    param: str          # mup | sp
    run_dir: Path
    spec: StudySpec

    def report(self, step: int, value: float) -> None:
        """Report an intermediate validation loss; raise ``optuna.TrialPruned`` if told to stop."""
        import optuna

        if value is None or not math.isfinite(value):
            raise Diverged(f"validation loss {value} at step {step}")
        self.trial.report(float(value), int(step))
        if self.trial.should_prune():
            self.trial.set_user_attr("pruned_at_step", int(step))
            raise optuna.TrialPruned(f"pruned at step {step} (val loss {value:.4f})")


def proxy_objective(ctx: TrialContext) -> float:
    """A real proxy training run (``proxy_train.train.train``); returns the final val loss."""
    from proxy_train.train import train

    cfg = train_config(ctx.spec, width=ctx.width, param=ctx.param, hp=ctx.hp)
    run = train(cfg, ctx.run_dir, on_eval=lambda step, tokens, loss: ctx.report(step, loss))
    status = str(run.get("status", "ok"))
    if status == "diverged":
        raise Diverged(str(run.get("reason") or "loss diverged"))
    if status not in ("ok", "complete", "completed", "done"):
        raise RuntimeError(f"proxy run ended with status {status!r}: {run.get('reason', '')}")
    loss = run.get("final_val_loss")
    if loss is None or not math.isfinite(float(loss)):
        raise Diverged(f"final validation loss {loss}")
    ctx.trial.set_user_attr("tokens", int(run.get("tokens") or cfg.total_steps * cfg.tokens_per_step))
    return float(loss)


def resolve_objective(name: str) -> Callable[[TrialContext], float]:
    """``proxy`` (the real trainer) or ``/path/file.py:function`` (tests use a sleeping one)."""
    if name == "proxy":
        return proxy_objective
    path, _, func = name.rpartition(":")
    if not path or not Path(path).is_file():
        raise UserError(f"objective {name!r} not found; use 'proxy' or /path/to/file.py:function")
    mod_spec = importlib.util.spec_from_file_location(f"_sweep_objective_{Path(path).stem}", path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    return getattr(mod, func)


def _failure_reason(e: BaseException) -> str:
    """The ``fail_reason`` recorded for an exception out of an objective."""
    if isinstance(e, KeyboardInterrupt):
        return f"{INTERRUPTED}: stopped by Ctrl-C / SIGINT"
    if isinstance(e, UserError):
        return f"error: {e}"
    return f"error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


def _start(trial, study_dir: Path, spec: StudySpec) -> TrialContext:
    """Sample the trial and name its run folder (recorded as user attributes)."""
    hp, width, param = suggest(trial, spec)
    trial.set_user_attr("width", width)
    trial.set_user_attr("param", param)
    run_dir = Path(study_dir) / "runs" / f"trial_{trial.number:05d}"
    trial.set_user_attr("run_dir", str(run_dir.relative_to(study_dir)))
    return TrialContext(trial=trial, hp=hp, width=width, param=param, run_dir=run_dir, spec=spec)


def make_objective(study_dir: Path, spec: StudySpec, guard, *, worker_id: int = 0):
    """The Optuna objective: ``guard.check_start`` (raises :class:`Surplus` when the target is
    already filled), sample, run, and turn failures into reasons."""
    import optuna

    fn = resolve_objective(spec.objective)

    def objective(trial) -> float:
        trial.set_user_attr("worker", f"{os.uname().nodename}:{os.getpid()}:{worker_id}")
        try:
            guard.check_start(trial.study, trial)
        except Surplus as e:
            trial.set_user_attr("fail_reason", str(e))
            raise
        ctx = _start(trial, study_dir, spec)
        try:
            value = float(fn(ctx))
        except optuna.TrialPruned:
            raise
        except Diverged as e:
            trial.set_user_attr("fail_reason", f"diverged: {e}")
            raise optuna.TrialPruned(f"diverged: {e}") from None
        except (KeyboardInterrupt, Exception) as e:
            trial.set_user_attr("fail_reason", _failure_reason(e))
            raise
        if not math.isfinite(value):
            trial.set_user_attr("fail_reason", f"diverged: final loss {value}")
            raise optuna.TrialPruned("non-finite loss")
        return value

    return objective
