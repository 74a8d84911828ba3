"""The training-horizon LR correction: the fit, the stored measurement, and the plan applying it.

Outside facts: the optimal LR falls with the token horizon at fixed model size, lr* ∝ D^b with
b < 0 (Bjorck et al. 2024, arXiv:2409.19913, Fig. 1 and §3); studies/horizon/horizon.json is the
project's own measurement (`scaleplan horizon-check`, README there).
"""
from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
import yaml

from conftest import run_cli
from planner.errors import UserError
from planner.hparams import HParams
from planner.horizon import MEASURED, HorizonCorrection, fit_horizon_exponent, lr_factor
from planner.plan import make_plan
from proxy_train.horizon import analyze, next_cells, parse_horizons, start_window

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "studies" / "horizon"


# ---------------------------------------------------------------------------------------------- the fit

def test_fit_recovers_a_known_exponent_within_its_ci():
    rng = random.Random(7)
    b_true, a_true = -0.3, 2.0
    xs = [math.log2(t) for t in (5e4, 2e5, 8e5, 3.2e6) for _ in range(3)]
    ys = [a_true + b_true * x + rng.gauss(0, 0.15) for x in xs]
    fit = fit_horizon_exponent(xs, ys)
    assert fit["ci_low"] < b_true < fit["ci_high"]
    assert fit["ci_high"] < 0  # the data say "falls with horizon"
    assert fit["n"] == 12 and fit["dof"] == 10
    # noiseless points: exact, zero-width interval
    exact = fit_horizon_exponent(xs, [a_true + b_true * x for x in xs])
    assert exact["exponent"] == pytest.approx(b_true, abs=1e-12) and exact["se"] == pytest.approx(0, abs=1e-12)


def test_fit_ci_matches_the_textbook_regression_interval():
    """scipy.stats.linregress gives SE(b); the 95% CI is b ± t(0.975, n-2) SE."""
    from scipy import stats

    xs, ys = [1, 2, 3, 4, 5, 6], [0.1, -0.4, -0.2, -1.1, -0.9, -1.6]
    fit = fit_horizon_exponent(xs, ys)
    ref = stats.linregress(xs, ys)
    t = stats.t.ppf(0.975, 4)
    assert fit["exponent"] == pytest.approx(ref.slope) and fit["se"] == pytest.approx(ref.stderr)
    assert fit["ci_low"] == pytest.approx(ref.slope - t * ref.stderr)


def test_fit_refuses_too_few_points():
    with pytest.raises(UserError, match="needs >= 3 optima"):
        fit_horizon_exponent([10, 10, 10], [1, 2, 3])


def test_analyze_finds_each_horizons_optimum_and_the_slope():
    """Parabolic loss curves in log2 LR whose vertex moves by b per octave of tokens."""
    b = -0.5
    rows = []
    for steps in (50, 200, 800):
        tokens = steps * 1024
        opt = -4.0 + b * math.log2(tokens / 51200)
        for seed, jitter in ((0, 0.05), (1, -0.05)):
            for i in range(13):  # -9 .. -3
                x = -9.0 + 0.5 * i
                rows.append({"horizon_steps": steps, "tokens": tokens, "seed": seed, "log2_lr": x,
                             "final_val_loss": 3.0 + 0.2 * (x - opt - jitter) ** 2})
    res = analyze(rows, n_params=100_000)
    assert res["fit"]["exponent"] == pytest.approx(b, abs=1e-9)
    h = res["horizons"]["200"]
    assert h["optimum_log2_lr"] == pytest.approx(-5.0, abs=1e-9) and h["tokens_per_param"] == pytest.approx(2.048)
    assert h["seed_se"] == pytest.approx(0.05)


# ---------------------------------------------------------------------------------------------- the LR window

def test_window_widens_until_the_minimum_is_bracketed():
    grid = [x / 2 for x in range(-24, -3)]  # -12 .. -2 in half octaves
    w = start_window(grid, -7.0)
    assert w == [-8.0, -7.5, -7.0, -6.5, -6.0]
    falling = {x: 3.0 + 0.1 * x for x in w}  # lower loss at lower LR: minimum at the low edge
    assert next_cells(grid, w, falling) == [-8.5]
    bowl = {x: (x + 7.0) ** 2 for x in w}
    assert next_cells(grid, w, bowl) == []
    diverged_high = {**{x: (x + 6.5) ** 2 for x in w}, -6.0: None}
    assert next_cells(grid, w, diverged_high) == []  # a diverged run bounds the high side
    assert next_cells(grid, w, {-8.0: 1.0}) == []  # not all run yet


def test_horizons_need_three():
    with pytest.raises(UserError, match="at least 3"):
        parse_horizons("50,200")


# ---------------------------------------------------------------------------------------------- the stored measurement

def test_the_stored_constant_is_the_studys_fit():
    res = json.loads((STUDY / "horizon.json").read_text())
    fit = res["fit"]
    assert MEASURED.exponent == pytest.approx(fit["exponent"], rel=1e-9)
    assert (MEASURED.ci_low, MEASURED.ci_high) == (pytest.approx(fit["ci_low"], rel=1e-9),
                                                    pytest.approx(fit["ci_high"], rel=1e-9))
    tokens = sorted(h["tokens"] for h in res["horizons"].values())
    assert MEASURED.horizons == (tokens[0], tokens[-1])
    # the study holds >= 3 horizons at one width, each optimum from >= 2 seeds, and the command that made it
    assert len(tokens) >= 3 and all(len(h["seed_optima"]) >= 2 for h in res["horizons"].values())
    st = yaml.safe_load((STUDY / "study.yaml").read_text())
    assert st["command"] in MEASURED.source and "horizon-check" in st["command"]


def test_lr_factor_is_the_power_law():
    c = HorizonCorrection(exponent=-0.25, ci_low=-0.4, ci_high=-0.1, source="test", horizons=(1e5, 1e6))
    assert c.lr_factor(1e6, 16e6) == pytest.approx(0.5)
    assert lr_factor(-0.25, 1e6, 1e6) == 1.0
    assert c.factor_range(1e6, 16e6) == (pytest.approx(16 ** -0.4), pytest.approx(16 ** -0.1))
    assert c.extrapolation_octaves(1e6, 16e6) == pytest.approx(4 - math.log2(10))
    with pytest.raises(UserError, match="positive token counts"):
        lr_factor(-0.25, 0, 1e6)


def test_only_a_significant_fall_is_usable():
    assert HorizonCorrection(-0.2, -0.3, -0.1, "x").unusable_reason() is None
    assert "no significant fall" in HorizonCorrection(-0.1, -0.3, 0.1, "x").unusable_reason()
    assert "no significant fall" in HorizonCorrection(0.2, 0.1, 0.3, "x").unusable_reason()  # a rising optimum
    assert "no measured" in HorizonCorrection(float("nan"), float("nan"), float("nan"), "x").unusable_reason()


# ---------------------------------------------------------------------------------------------- the plan

#: A falling optimum like Bjorck et al. 2024's, to test the mechanism whatever our measurement says.
FALLING = HorizonCorrection(exponent=-0.3, ci_low=-0.4, ci_high=-0.2, source="test: a falling optimum",
                            horizons=(5e4, 3.3e6))


@pytest.fixture
def falling(monkeypatch):
    monkeypatch.setattr("planner.horizon.MEASURED", FALLING)
    return FALLING


def _plans(hp):
    on = make_plan(1e21, hparams=hp, n_gpus=8)
    off = make_plan(1e21, hparams=hp, n_gpus=8, horizon_correction=False)
    return on, off


def test_plan_applies_the_factor_and_states_it(falling):
    t_proxy = 2_000_000
    hp = HParams(base_width=256, lr=6e-3, source={"tokens": t_proxy})
    on, off = _plans(hp)
    assert on.tokens == off.tokens
    factor = (on.tokens / t_proxy) ** falling.exponent
    assert on.training.lr / off.training.lr == pytest.approx(factor, rel=1e-12)
    for name in ("embedding", "hidden", "readout", "norms"):
        assert on.hparams.groups[name].lr / off.hparams.groups[name].lr == pytest.approx(factor, rel=1e-12)
    assert on.training.decoupled_lr / off.training.decoupled_lr == pytest.approx(factor, rel=1e-12)
    h = on.to_dict()["hparams"]["horizon"]
    assert h["applied"] and h["factor"] == pytest.approx(factor) and h["exponent"] == falling.exponent
    assert h["factor_ci_low"] <= factor <= h["factor_ci_high"] and h["t_proxy_tokens"] == t_proxy
    assert h["t_target_tokens"] == on.tokens and h["source"] == falling.source
    assert "training-horizon factor" in on.training.lr_source
    assert "horizon    LR x" in on.summary()
    # off restores the uncorrected μP value: hidden LR = base lr / m_d
    assert off.training.lr == pytest.approx(6e-3 / (off.shape.d_model / 256), rel=1e-12)
    assert off.to_dict()["hparams"]["horizon"] == {"applied": False, "reason": "turned off (--no-horizon-correction)"}


def test_sp_hparams_get_the_factor_too(falling):
    hp = HParams(parameterization="sp", base_width=128, lr=1e-3, source={"tokens": 1_000_000})
    on, off = _plans(hp)
    assert on.training.lr / off.training.lr == pytest.approx((on.tokens / 1e6) ** falling.exponent, rel=1e-12)


def test_unknown_proxy_tokens_means_no_correction_and_the_plan_says_why(falling):
    on, off = _plans(HParams(base_width=256, lr=6e-3))
    assert on.training.lr == off.training.lr
    assert "source.tokens" in on.hparams.horizon["reason"] and "horizon    no LR correction" in on.summary()


def test_plan_states_what_our_measurement_allows():
    """With the stored exponent: applied when its CI lies below 0, else the tuned LR kept and the reason given."""
    on, off = _plans(HParams(base_width=256, lr=6e-3, source={"tokens": 2_000_000}))
    reason = MEASURED.unusable_reason()
    if reason is None:
        assert on.training.lr / off.training.lr == pytest.approx((on.tokens / 2e6) ** MEASURED.exponent)
    else:
        assert on.training.lr == off.training.lr and on.hparams.horizon == {"applied": False, "reason": reason}
        assert "no significant fall" in reason and f"{MEASURED.exponent:.3g}" in on.summary()


def test_cli_no_horizon_correction(tmp_path, falling, capsys):
    from scaleplan.cli import main

    path = tmp_path / "hparams.yaml"
    HParams(base_width=256, lr=6e-3, source={"tokens": 2_000_000}).write(path)
    base = ["plan", "--flops", "1e21", "--gpus", "8", "--hparams", str(path), "--force-hparams", "--json"]
    assert main(base) == 0
    a = json.loads(capsys.readouterr().out)
    assert main([*base, "--no-horizon-correction"]) == 0
    b = json.loads(capsys.readouterr().out)
    assert a["training"]["lr"] / b["training"]["lr"] == pytest.approx(a["hparams"]["horizon"]["factor"], rel=1e-9)
    assert a["hparams"]["horizon"]["factor"] < 1 and not b["hparams"]["horizon"]["applied"]


def test_cli_horizon_check_refuses_bad_horizons(tmp_path):
    r = run_cli("horizon-check", "--data", tmp_path, "--out", tmp_path / "h", "--horizons", "50,200")
    assert r.returncode == 2 and "at least 3" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "h").exists()
