"""Sardana et al. 2024 inference-aware sizing: the paper's 13B worked example and invariants."""
from __future__ import annotations

import pytest

from planner.errors import UserError
from planner.inference_aware import inference_optimal, inference_optimal_for_budget
from planner.laws import PRESETS, ScalingLaw

SARDANA = ScalingLaw(E=1.69, A=406.4, B=410.7, alpha=0.336, beta=0.283)


def test_sardana_13b_example():
    """Sardana et al. 2024 Sec. 2: the Chinchilla-optimal 13B model (D ~ 5.77e11 tokens,
    loss ~ 2.0453) serving 2e12 inference tokens is replaced by ~6.97e9 params trained on
    ~1.25e12 tokens, saving ~1.69e22 FLOPs (~17%)."""
    loss = SARDANA.predict(13e9, 5.77e11)
    assert loss == pytest.approx(2.0453, abs=1e-4)
    a = inference_optimal(SARDANA, loss, 2e12)
    assert a.chinchilla.N == pytest.approx(13e9, rel=0.005)
    assert a.chinchilla.D == pytest.approx(5.77e11, rel=0.005)
    assert a.N == pytest.approx(6.97e9, rel=0.01)
    assert a.D == pytest.approx(1.25e12, rel=0.01)
    assert a.savings_flops == pytest.approx(1.69e22, rel=0.02)
    assert a.savings_frac == pytest.approx(0.17, abs=0.01)
    assert SARDANA.predict(a.N, a.D) == pytest.approx(loss, rel=1e-9)


def test_no_inference_is_chinchilla_and_more_inference_shrinks_model():
    law = PRESETS["hoffmann2022"]
    loss = law.optimal(1e22).loss
    zero = inference_optimal(law, loss, 0)
    assert zero.N == pytest.approx(law.optimal(1e22).N, rel=1e-9) and zero.savings_flops == 0
    sizes = [inference_optimal(law, loss, t).N for t in (1e10, 1e12, 1e13, 1e14)]
    assert all(x > y for x, y in zip(sizes, sizes[1:]))


def test_total_cost_is_minimal_on_the_iso_loss_curve():
    law = PRESETS["hoffmann2022"]
    loss = 2.1
    a = inference_optimal(law, loss, 5e12)
    from planner.inference_aware import _tokens_for_loss

    def cost(n):
        return 6 * n * _tokens_for_loss(law, n, loss) + 2 * n * 5e12

    assert a.total_flops == pytest.approx(cost(a.N))
    assert a.total_flops <= min(cost(a.N * 1.02), cost(a.N / 1.02))


def test_budget_form():
    law = PRESETS["hoffmann2022"]
    C = 1e23
    b = inference_optimal_for_budget(law, C, 1e13)
    assert b.loss == pytest.approx(law.optimal(C).loss)
    assert b.chinchilla.C == pytest.approx(C, rel=1e-9)
    assert b.train_flops > C and b.total_flops < b.chinchilla_total_flops


def test_bad_input():
    with pytest.raises(UserError, match="unreachable"):
        inference_optimal(SARDANA, 1.5, 1e12)
    with pytest.raises(UserError, match=">= 0"):
        inference_optimal(SARDANA, 2.1, -5)
    with pytest.raises(UserError):
        inference_optimal_for_budget(SARDANA, 0, 1e12)
