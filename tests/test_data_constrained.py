"""Muennighoff et al. 2023 data-constrained law: published values, allocation, refit on their runs."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from planner.data_constrained import (MUENNIGHOFF2023, DataConstrainedLaw, data_constrained_law,
                                      fit_data_constrained)
from planner.errors import UserError
from planner.laws import PRESETS


def test_published_readme_losses():
    """huggingface/datablations README 'Parametric Fit': the two Figure 1 (right) models."""
    assert MUENNIGHOFF2023.predict(6.34e9, 242e9, 25e9) == pytest.approx(2.2256440889984477, abs=1e-9)
    assert MUENNIGHOFF2023.predict(8.67e9, 178e9, 25e9) == pytest.approx(2.2269634075087867, abs=1e-9)


def test_published_readme_allocation():
    """README: at the compute of 8.67B params x 178B tokens with 25B unique tokens the optimum is
    ~227B tokens, 9.1 epochs, 6.8B params (their grid search; we minimise continuously)."""
    a = MUENNIGHOFF2023.optimal(6 * 8.67e9 * 178e9, 25e9)
    assert a.D == pytest.approx(227e9, rel=0.01)
    assert a.epochs == pytest.approx(9.1, abs=0.05)
    assert a.N == pytest.approx(6.8e9, rel=0.01)
    assert a.loss <= MUENNIGHOFF2023.predict(8.67e9, 178e9, 25e9)
    assert a.loss_penalty > 0


def test_single_epoch_reduces_to_base_law():
    law = MUENNIGHOFF2023
    N, D = 1e9, 2e10
    assert law.n_opt_for_tokens(D) > N  # not excess-parameterised
    assert law.predict(N, D, U=D) == pytest.approx(law.base.predict(N, D), rel=1e-12)
    assert law.predict(N, D, U=10 * D) == pytest.approx(law.base.predict(N, D), rel=1e-12)
    # n_opt_for_tokens is the inverse of the base law's compute-optimal D*(C)
    a = law.base.optimal(1e21)
    assert law.n_opt_for_tokens(a.D) == pytest.approx(a.N, rel=1e-9)


def test_repetition_value_decays():
    law = MUENNIGHOFF2023
    U = 1e10
    eff = [float(law.effective_data(e * U, U)) for e in (1, 4, 16, 64, 1000)]
    assert eff[0] == U
    assert eff[1] / U == pytest.approx(1 + 15.387756 * (1 - np.exp(-3 / 15.387756)))
    assert all(x < y for x, y in zip(eff, eff[1:]))
    assert eff[-1] <= U * (1 + law.rd_star)  # bounded: at most 1 + R_D* epochs' worth


def test_allocation_without_constraint_matches_chinchilla():
    law = data_constrained_law(PRESETS["hoffmann2022"])
    C = 1e22
    free = PRESETS["hoffmann2022"].optimal(C)
    a = law.optimal(C, U=10 * free.D)
    assert a.N == pytest.approx(free.N, rel=1e-4)
    assert a.loss_penalty == pytest.approx(0.0, abs=1e-9)
    tight = law.optimal(C, U=free.D / 20)
    assert tight.epochs > 1 and tight.loss_penalty > 0.01


def test_refit_on_datablations_runs(shared_data):
    """Refit on the 182 runs behind the paper's fit (huggingface/datablations).

    Honest statement of what the data pin down: with the published base law and R_D* fixed at
    15.387756, our Huber fit gives R_N* within 1% of the published 5.309743. Fitting both
    constants jointly, the objective is nearly flat along a valley (R_D*, R_N*): our optimum must
    be at least as good as the published pair, and the published pair within 0.5% of it.
    """
    d = pd.read_csv(shared_data / "external" / "muennighoff2023_datablations_fit182.csv")
    assert len(d) == 182
    f = fit_data_constrained(d.N, d.D, d.U, d.loss, rd_star=15.387756)
    assert f.law.rn_star == pytest.approx(5.309743, rel=0.01)
    joint = fit_data_constrained(d.N, d.D, d.U, d.loss)
    from planner.data_constrained import _huber

    def obj(law):
        return float(np.sum(_huber(np.log(law.predict(d.N.values, d.D.values, d.U.values)) - np.log(d.loss.values),
                                   1e-3)))

    assert joint.objective <= obj(MUENNIGHOFF2023) + 1e-12
    assert obj(MUENNIGHOFF2023) < 1.005 * joint.objective
    assert joint.law.rd_star > 1 and joint.law.rn_star > 0.5


def test_fitter_recovers_synthetic_constants():
    rng = np.random.default_rng(1)
    truth = DataConstrainedLaw(PRESETS["muennighoff2023"], rd_star=8.0, rn_star=3.0)
    N = 10 ** rng.uniform(7.5, 9.5, 150)
    U = 10 ** rng.uniform(8, 10, 150)
    D = U * 10 ** rng.uniform(0, 2, 150)
    L = truth.predict(N, D, U) * np.exp(rng.normal(0, 2e-4, 150))
    f = fit_data_constrained(N, D, U, L)
    assert f.law.rd_star == pytest.approx(8.0, rel=0.1)
    assert f.law.rn_star == pytest.approx(3.0, rel=0.15)


def test_bad_input():
    with pytest.raises(UserError):
        MUENNIGHOFF2023.optimal(-1, 1e9)
    with pytest.raises(UserError):
        MUENNIGHOFF2023.optimal(1e20, 0)
    with pytest.raises(UserError, match="same length"):
        fit_data_constrained([1e9], [1e9, 2e9], [1e9], [3.0])
    with pytest.raises(UserError, match="usable rows"):
        fit_data_constrained([1e9, -1], [1e9, 1e9], [1e9, 1e9], [3.0, 3.0])
    with pytest.raises(UserError):
        DataConstrainedLaw(PRESETS["hoffmann2022"], rd_star=-1, rn_star=5)
