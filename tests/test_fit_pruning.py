"""Stopping starts that sit far above the best objective must not change the optimum found."""
from __future__ import annotations

import numpy as np
import pytest

import planner.fit as F
import planner.fit_solver as solver
from planner.runs import load_runs


def _fit_both(monkeypatch, N, D, L, **kw):
    pruned = F.ChinchillaFitter(**kw).fit(N, D, L)
    monkeypatch.setattr(solver, "PRUNE_FACTOR", np.inf)  # no start is ever stopped early
    full = F.ChinchillaFitter(**kw).fit(N, D, L)
    monkeypatch.undo()
    return pruned, full


@pytest.mark.parametrize("seed", range(4))
def test_pruning_keeps_the_optimum_on_synthetic_laws(monkeypatch, seed):
    rng = np.random.default_rng(seed)
    E, A, B, alpha, beta = 1.5 + rng.random(), 300 + 300 * rng.random(), 300 + 1500 * rng.random(), \
        0.25 + 0.2 * rng.random(), 0.25 + 0.2 * rng.random()
    N = np.repeat(np.geomspace(1e7, 3e9, 8), 4)
    D = N * np.tile([5.0, 10.0, 20.0, 40.0], 8)
    L = (E + A / N ** alpha + B / D ** beta) * np.exp(rng.normal(0, 0.01, N.size))
    pruned, full = _fit_both(monkeypatch, N, D, L)
    assert pruned.objective_ <= full.objective_ * (1 + 1e-9)
    for k in ("alpha", "beta", "E"):
        assert pruned.params_[k] == pytest.approx(full.params_[k], rel=1e-6)


def test_pruning_keeps_the_chinchilla_optimum(monkeypatch, shared_data):
    df = load_runs(shared_data / "external" / "chinchilla_epoch2024_svg_extracted.csv", n_col="Model Size",
                   flops_col="Training FLOP", loss_col="loss")
    pruned, full = _fit_both(monkeypatch, df.N, df.D, df.loss, drop_top_loss=5)
    assert pruned.objective_ == pytest.approx(full.objective_, rel=1e-12)
    for k in ("alpha", "beta", "E", "A", "B"):
        assert pruned.params_[k] == pytest.approx(full.params_[k], rel=1e-8)
    assert pruned.converged_ and full.converged_
