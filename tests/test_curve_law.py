"""The loss-curve law with LR annealing (Tissue et al. 2024, arXiv:2408.11029, Eq. 1): areas, fit, record.

Real-run checks (measured curves of our own proxies) are in tests/test_curve_law_real.py; the CLI in
tests/test_curve_law_cli.py.
"""
from __future__ import annotations

import numpy as np
import pytest

from planner.curve_law import CurveLaw, CurveSegment, areas, fit_curve_law, noise_scale
from planner.errors import UserError
from proxy_train.curve_fit import lr_factors
from proxy_train.schedules import lr_factor

TRUE = dict(L0=1.5, A=4.0, alpha=0.4, C=0.008, lam=0.95)


def _curve(lr, rng, sigma, law=CurveLaw(**TRUE)):
    s = np.arange(1, len(lr) + 1)
    return s, law.predict(lr, s) + rng.normal(0.0, sigma, len(s))


def test_areas_follow_the_definitions():
    # S1 = sum of the LR factors so far; S2 = sum of momenta m_k = lam m_(k-1) + (eta_(k-1) - eta_k)
    lr = np.array([0.5, 1.0, 1.0, 0.8, 0.5, 0.5])
    s1, s2 = areas(lr, 0.5)
    assert s1.tolist() == pytest.approx([0, 0.5, 1.5, 2.5, 3.3, 3.8, 4.3])
    # warmup (0.5 -> 1.0) is not annealing; drops 0.2 at update 3, 0.3 at update 4
    m = [0, 0, 0, 0.2, 0.5 * 0.2 + 0.3, 0.5 * (0.5 * 0.2 + 0.3)]
    assert s2.tolist() == pytest.approx(np.concatenate([[0], np.cumsum(m)]).tolist())
    # constant LR after warmup: no annealing area at all
    assert areas(lr_factors(200, schedule="constant", warmup_steps=10), 0.99)[1].max() == 0.0


def test_lr_factors_are_the_trainers():
    f = lr_factors(300, schedule="wsd", warmup_steps=12, cooldown_frac=0.2)
    assert f.tolist() == [lr_factor(i, 300, schedule="wsd", warmup_steps=12, cooldown_frac=0.2) for i in range(300)]
    assert f[0] == pytest.approx(1 / 12) and f[100] == 1.0 and f[-1] == pytest.approx(0.1)


def test_fit_recovers_known_parameters_and_predicts_another_schedule():
    rng = np.random.default_rng(0)
    segs = []
    for steps, kind in ((1000, "wsd"), (600, "cosine")):  # noisy per-step losses of two schedules
        lr = lr_factors(steps, schedule=kind, warmup_steps=20)
        s, y = _curve(lr, rng, 0.03)
        segs.append(CurveSegment(lr, s[s >= 50], y[s >= 50], sigma=0.03))
    law = fit_curve_law(segs)
    assert law.lam == TRUE["lam"]
    for k in ("L0", "A", "alpha", "C"):
        assert getattr(law, k) == pytest.approx(TRUE[k], rel=0.1), k
    assert law.fit["residuals"]["train"]["rms"] == pytest.approx(0.03, rel=0.1)
    for kind in ("cosine", "constant"):  # another schedule at another length
        lr = lr_factors(1500, schedule=kind, warmup_steps=20)
        assert law.final(lr) == pytest.approx(CurveLaw(**TRUE).final(lr), rel=0.003)


def test_one_schedule_leaves_lam_and_c_traded_off():
    # WSD curves alone (short cooldowns) pin the cooldown's gain C*S2 but hardly lam: a known
    # limit of fitting this law on WSD runs, measured on our proxies in benchmarks/results/curve_law.txt
    rng = np.random.default_rng(0)
    segs = []
    for steps in (1000, 600):
        lr = lr_factors(steps, schedule="wsd", warmup_steps=20)
        s, y = _curve(lr, rng, 0.05)
        segs.append(CurveSegment(lr, s[s >= 50], y[s >= 50], sigma=0.05))
    law = fit_curve_law(segs)
    lr = segs[0].lr
    gain = law.C * areas(lr, law.lam)[1][-1]
    assert gain == pytest.approx(TRUE["C"] * areas(lr, TRUE["lam"])[1][-1], rel=0.1)
    costs = sorted(law.fit["cost_by_lam"].values())
    assert (costs[1] - costs[0]) / costs[0] < 0.01  # the runner-up lam fits nearly as well


def test_validation_offset_is_fitted():
    rng = np.random.default_rng(1)
    lr = lr_factors(800, schedule="wsd", warmup_steps=16)
    s, y = _curve(lr, rng, 0.05)
    vs = np.arange(80, 801, 40)
    vy = CurveLaw(**TRUE).predict(lr, vs) - 0.07 + rng.normal(0, 0.005, len(vs))
    law = fit_curve_law([CurveSegment(lr, s[s >= 80], y[s >= 80], sigma=0.05),
                         CurveSegment(lr, vs, vy, val=True, sigma=0.01)], lam=0.95)
    assert law.val_offset == pytest.approx(-0.07, abs=0.01)
    assert law.fit["sigma"]["val"] < 0.02 < law.fit["sigma"]["train"]


def test_annealing_beats_constant_lr_at_equal_steps():
    # Tissue et al. 2024 §4 (and Hägele et al. 2024, arXiv:2405.18392 §3): at equal steps a cooldown
    # ends lower than a constant LR, although it has less forward area
    law = CurveLaw(**TRUE)
    const, wsd = (lr_factors(1000, schedule=k, warmup_steps=20) for k in ("constant", "wsd"))
    assert areas(wsd, 0.95)[0][-1] < areas(const, 0.95)[0][-1]
    assert law.final(wsd, val=False) < law.final(const, val=False)


def test_record_round_trip_and_bad_records():
    law = CurveLaw(**TRUE, val_offset=-0.05, fit={"points": 10})
    back = CurveLaw.from_dict(law.to_dict())
    assert back == law
    with pytest.raises(UserError, match="lacks"):
        CurveLaw.from_dict({"L0": 1.0})
    with pytest.raises(UserError, match="invalid"):
        CurveLaw.from_dict({**TRUE, "lam": 1.5})


def test_bad_inputs_are_user_errors():
    lr = np.ones(10)
    with pytest.raises(UserError, match="steps must lie"):
        CurveSegment(lr, [0, 5], [1.0, 1.0])
    with pytest.raises(UserError, match="at least 6"):
        fit_curve_law([CurveSegment(lr, [2, 3], [1.0, 1.0])])
    with pytest.raises(UserError, match="lam"):
        areas(lr, 1.0)
    assert noise_scale([1.0, 1.0]) == 1.0
