"""planner.isoflop: Approach 2 on synthetic profiles and against Porian et al. 2024's published optima."""
import numpy as np
import pandas as pd
import pytest

from planner.errors import UserError
from planner.isoflop import fit_budget, fit_isoflop, group_budgets


def _law(N, D, E=1.69, A=406.4, B=410.7, al=0.34, be=0.28):
    return E + A / N ** al + B / D ** be


def test_synthetic_exponent_matches_closed_form():
    """Noiseless Hoffmann law: the isoFLOP vertices follow N* ∝ C^(beta/(alpha+beta)) (Hoffmann 2022, Eq. 4)."""
    N, L, C = [], [], []
    for c in np.geomspace(1e18, 1e21, 6):
        G = (0.34 * 406.4 / (0.28 * 410.7)) ** (1 / 0.62)
        Nopt = G * (c / 6) ** (0.28 / 0.62)
        n = np.geomspace(Nopt / 4, Nopt * 4, 9)  # bracket the closed-form optimum
        N += list(n)
        L += list(_law(n, c / (6 * n)))
        C += [c] * n.size
    res = fit_isoflop(N, L, C, bootstrap=0)
    assert len(res.used) == 6
    assert res.a == pytest.approx(0.28 / 0.62, abs=0.01)
    assert res.a + res.b == pytest.approx(1.0, abs=1e-9)


def test_refusals_are_reported_not_raised():
    n = np.geomspace(1e7, 1e8, 5)
    ok = fit_budget(1e19, n, (np.log(n) - np.log(3e7)) ** 2 + 3)
    assert ok.refused is None and ok.N_opt == pytest.approx(3e7, rel=1e-6)
    assert "distinct" in fit_budget(1e19, [1e7, 1e7, 2e7], [3, 3.1, 3]).refused
    assert "not convex" in fit_budget(1e19, n, -(np.log(n) - 17) ** 2).refused
    assert "not bracketed" in fit_budget(1e19, n, (np.log(n) - np.log(1e9)) ** 2).refused


def test_too_few_budgets_raise():
    n = np.geomspace(1e7, 1e8, 5)
    with pytest.raises(UserError, match="at least 2 budgets"):
        fit_isoflop(n, (np.log(n) - 17) ** 2 + 3, np.full(5, 1e19))


def test_budget_binning():
    C = np.array([1e18, 1.0005e18, 2e18, 2.001e18, 2e18])
    labels, budgets = group_budgets(C, 0.0)
    assert labels.max() == 3
    labels, budgets = group_budgets(C, 1e-2)
    assert labels.max() == 1 and budgets[1] == pytest.approx(2.0003e18, rel=1e-3)


def test_porian2024_optima(shared_data):
    """Porian et al. 2024 (formll/resolving-scaling-law-discrepancies) published per-budget optima for
    15 configurations. Our parabola vertex (window of 5 runs around the lowest loss) reproduces
    their N* per budget with median |ln ratio| < 0.1 (10 %) and 90th percentile < 0.25; the
    exponent a (log-log slope over their budgets) within 0.04 for every configuration with
    finite published optima. Their optima come from a different interpolation, hence not exact."""
    pts = pd.read_csv(shared_data / "external/porian2024_isoflop_points.csv")
    opt = pd.read_csv(shared_data / "external/porian2024_isoflop_optima.csv").dropna(subset=["N_star"])
    log_err, a_err = [], []
    for cfg, g in pts.groupby("config"):
        res = fit_isoflop(g["N"], g["loss"], g["flops"], window=5, bootstrap=0)
        o = opt[opt.config == cfg]
        for b in res.used:
            m = np.isclose(o.flops.to_numpy(), b.C, rtol=1e-9)
            if m.any():
                log_err.append(abs(np.log(b.N_opt / o.N_star.to_numpy()[m][0])))
        if len(o) >= 3:
            a_ref = np.polyfit(np.log(o.flops), np.log(o.N_star), 1)[0]
            a_err.append(abs(res.a - a_ref))
    assert len(log_err) >= 150 and len(a_err) >= 10
    assert np.median(log_err) < 0.10
    assert np.percentile(log_err, 90) < 0.25
    assert max(a_err) < 0.04


def test_porian_exponent_interval(shared_data):
    pts = pd.read_csv(shared_data / "external/porian2024_isoflop_points.csv")
    g = pts[pts.config == "rw/tuned/short/const/standard/val"]
    res = fit_isoflop(g["N"], g["loss"], g["flops"], window=5, bootstrap=100, seed=1)
    lo, hi = res.ci["a"]
    assert lo < res.a < hi and hi - lo < 0.15
    # Porian et al. report a ≈ 0.5 (Chinchilla-like) for tuned, short-warmup, standard-FLOP training
    assert 0.45 < res.a < 0.56
