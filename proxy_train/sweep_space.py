"""What a sweep searches and how: the search space, the samplers and the pruners.

Conventions:

* Search space (natural units, all log-uniform except the warmup fraction): ``lr`` (base AdamW
  LR), ``init_std`` (base init std), ``alpha_out`` (output multiplier), ``alpha_in`` (input
  multiplier), ``warmup_frac``; ``weight_decay`` only with ``--tune-wd``. Ranges in :data:`SPACE`
  bracket the published base values: nanoGPT-mup σ=0.02, α=1; Cerebras-GPT η=6e-3, σ=0.08,
  embedding multiplier 10 (/work/shared/notes/mup-and-sweeps.md §0, §2.3).
* Width: with several ``--widths`` the width is a categorical parameter ``width`` of one study
  (the sampler learns a shared optimum, which μTransfer says exists). Every trial runs with
  ``base_width = width`` (m_d = 1), so the sampled numbers are the base values *at the trial's
  width*, and ``hparams.yaml`` names the best trial's width as ``base_width``.
* μTransfer grid (``kind: transfer``): ``width × param × log2_lr`` are categorical parameters,
  every cell enqueued by :func:`proxy_train.sweep.run_sweep`; the other values are ``transfer_hp``.
* Pruners count optimizer steps and start at ``min_resource`` = a quarter of the run: early losses
  favour large LRs (microsoft/mup#64).
"""
from __future__ import annotations

import math

from planner.errors import UserError
from proxy_train.study import DEFAULT_HPARAMS, SAMPLERS, StudySpec

# name -> (low, high, log). lr 2^-13..2^-4 spans the μP optimum ~2^-9 found at widths 64-512
# (notes §4.5) by four octaves on each side.
SPACE: dict[str, tuple[float, float, bool]] = {
    "lr": (2.0 ** -13, 2.0 ** -4, True),
    "init_std": (0.004, 0.2, True),
    "alpha_out": (0.125, 8.0, True),
    "alpha_in": (0.125, 16.0, True),
    "warmup_frac": (0.0, 0.2, False),
}
WD_SPACE = (1e-3, 0.3, True)


def suggest(trial, spec: StudySpec) -> tuple[dict, int, str]:
    """Sample (hp, width, param) for one trial from the study's search space."""
    if spec.kind == "transfer":
        width = int(trial.suggest_categorical("width", spec.grid["width"]))
        param = str(trial.suggest_categorical("param", spec.grid["param"]))
        log2_lr = float(trial.suggest_categorical("log2_lr", spec.grid["log2_lr"]))
        hp = {**DEFAULT_HPARAMS, **(spec.transfer_hp or {}), "lr": 2.0 ** log2_lr}
        return hp, width, param
    hp = {name: trial.suggest_float(name, lo, hi, log=log) for name, (lo, hi, log) in SPACE.items()}
    if spec.tune_wd:
        hp["weight_decay"] = trial.suggest_float("weight_decay", *WD_SPACE[:2], log=True)
    widths = spec.widths
    width = int(trial.suggest_categorical("width", widths)) if len(widths) > 1 else int(widths[0])
    return hp, width, spec.param


def derived_seed(seed: int, worker_id: int, n_existing: int) -> int:
    """Per-worker sampler seed: workers and resumed runs must not replay the same random draws."""
    return (int(seed) * 1_000_003 + worker_id * 7919 + n_existing * 104_729) % (2 ** 31 - 1)


def make_sampler(spec: StudySpec, seed: int):
    import optuna

    name = spec.sampler
    if name == "grid":
        # Every grid cell is enqueued by run_sweep(cells=...), so enqueued trials carry their own
        # parameters; the sampler only sees a trial that raced past the queue, which the target
        # guard fails as surplus. Not GridSampler: it stops the study once its ids look visited,
        # before retried or re-enqueued cells have run.
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "tpe":  # pinned: the 5.0 defaults differ from 4.x (notes §5.1)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True,
                                          n_startup_trials=10)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise UserError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")


def make_pruner(spec: StudySpec):
    """Pruner over optimizer steps; never prunes before a quarter of the run (mup#64)."""
    import optuna

    steps = int(spec.total_steps)
    min_r = max(1, math.ceil(steps / 4))
    name = spec.pruner
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=min_r, max_resource=steps, reduction_factor=3)
    if name == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=min_r, reduction_factor=3)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=min_r)
    return optuna.pruners.NopPruner()
