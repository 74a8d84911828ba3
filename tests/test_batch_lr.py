"""DeepSeek LLM 2024 LR/batch laws: the paper's formulas at two model sizes, refit, warnings."""
from __future__ import annotations

import numpy as np
import pytest

from planner.batch_lr import DEEPSEEK2024, PowerLaw, batch_warning, fit_batch_lr
from planner.errors import UserError


@pytest.mark.parametrize("layers, d, lr, batch", [
    (30, 4096, 4.25e-4, 9.22e6),   # DeepSeek 7B-like shape, 2T tokens
    (95, 8192, 3.12e-4, 20.7e6),   # DeepSeek 67B-like shape, 2T tokens
])
def test_deepseek_vectors(layers, d, lr, batch):
    r = DEEPSEEK2024.for_model(layers, d, 4096, 2e12)
    assert r["flops_per_token"] == 72 * layers * d * d + 12 * layers * d * 4096
    assert r["lr"] == pytest.approx(lr, rel=0.005)
    assert r["batch_tokens"] == pytest.approx(batch, rel=0.005)


def test_powerlaw_fit_recovers_exponents_with_ci():
    """Refit from noisy sweep optima: the 95% intervals cover the truth ~95% of the time."""
    rng = np.random.default_rng(0)
    C = np.logspace(17, 21, 12)
    hits, widths = 0, []
    for _ in range(300):
        lr = 0.3118 * C ** -0.125 * np.exp(rng.normal(0, 0.03, C.size))
        bs = 0.2920 * C ** 0.3271 * np.exp(rng.normal(0, 0.03, C.size))
        law = fit_batch_lr(C, lr, bs)
        for fitted, true in ((law.lr, -0.125), (law.batch, 0.3271)):
            lo, hi = fitted.ci["exponent"]
            hits += lo < true < hi
            widths.append(hi - lo)
    assert 0.92 < hits / 600 < 0.98
    assert np.median(widths) < 0.02
    exact = PowerLaw.fit(C, 2.0 * C ** 0.5)
    assert exact.coef == pytest.approx(2.0) and exact.exponent == pytest.approx(0.5)


def test_fit_needs_three_budgets():
    with pytest.raises(UserError, match="3 distinct"):
        PowerLaw.fit([1e18, 1e18, 1e19], [1e-3, 2e-3, 1e-3])
    with pytest.raises(UserError, match="positive"):
        PowerLaw.fit([1e18, 1e19, 1e20], [1e-3, -1, 1e-3])


def test_batch_warning():
    C = 1e23
    opt = DEEPSEEK2024.optimal_batch_tokens(C)
    assert batch_warning(opt, C) is None
    assert batch_warning(2 * opt, C) is None
    assert "x the compute-optimal" in batch_warning(10 * opt, C)
    assert "below" in batch_warning(opt / 10, C)
    with pytest.raises(UserError):
        batch_warning(0, C)
