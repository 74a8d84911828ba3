"""A Gaussian prior on log E (planner/fit_prior.py): it pulls E toward its mean as its SD shrinks,
does nothing as the SD grows, its penalty's derivatives are exact, and bad input is one line."""
import json

import numpy as np
import pytest

from planner.errors import UserError
from planner.fit import ChinchillaFitter
from planner.fit_prior import EPrior, e_prior_from, parse_e_prior
from planner.fit_solver import _objective

from test_fit import synthetic


def _fit(N, D, L, prior=None):
    return ChinchillaFitter(grid="small", n_jobs=1, E_prior=prior).fit(N, D, L)


def test_prior_pulls_E_toward_its_mean_as_sd_shrinks_and_vanishes_as_sd_grows():
    N, D, L = synthetic(seed=2, noise=0.01, outliers=0)
    free = _fit(N, D, L)
    mean = 2.2  # well away from the free fit's E (~1.69)
    gaps = [abs(_fit(N, D, L, EPrior(mean, sd)).law_.E - mean) for sd in (1.0, 0.1, 0.01, 1e-4)]
    assert all(a > b for a, b in zip(gaps, gaps[1:]))  # monotone pull
    assert gaps[-1] < 1e-3 and gaps[0] > 0.3
    wide = _fit(N, D, L, EPrior(mean, 1e6))
    for k in ("E", "A", "B", "alpha", "beta"):
        assert getattr(wide.law_, k) == pytest.approx(getattr(free.law_, k), rel=1e-5)
    assert wide.result().meta["E_prior"]["on"] == "log E"


def test_prior_penalty_derivatives_match_finite_differences():
    N, D, L = synthetic(seed=3)
    x, y, lL = np.log(N) - 18, np.log(D) - 21, np.log(L)
    th = np.array([[3.0, 4.0, 0.4, 0.3, 0.3]])
    prior = (np.log(1.8), 7.0)
    F, g, H = _objective(th, x, y, lL, np.ones_like(x), 1e-3, 2, prior)
    F0, g0, H0 = _objective(th, x, y, lL, np.ones_like(x), 1e-3, 2)
    dev = th[0, 2] - prior[0]
    assert F[0] - F0[0] == pytest.approx(0.5 * 7.0 * dev ** 2, rel=1e-12)
    assert g[0, 2] - g0[0, 2] == pytest.approx(7.0 * dev, rel=1e-12) and H[0, 2, 2] - H0[0, 2, 2] == pytest.approx(7.0)
    h = 1e-6
    for i in range(5):
        e = np.zeros((1, 5))
        e[0, i] = h
        fd = (_objective(th + e, x, y, lL, np.ones_like(x), 1e-3, 0, prior)[0]
              - _objective(th - e, x, y, lL, np.ones_like(x), 1e-3, 0, prior)[0]) / (2 * h)
        assert fd[0] == pytest.approx(g[0, i], rel=1e-4, abs=1e-9)


def test_prior_sources_and_bad_input(tmp_path):
    assert parse_e_prior("1.8, 0.05") == EPrior(1.8, 0.05, source="--E-prior 1.8, 0.05")
    for bad in ("1.8", "a,b", "1.8,0", "-1,0.1", "1,2,3"):
        with pytest.raises(UserError):
            parse_e_prior(bad)
    p = e_prior_from("besiroglu2024")
    assert p.mean == pytest.approx(1.8172) and p.sd == pytest.approx(0.05 * 1.8172)
    N, D, L = synthetic(seed=4, outliers=0)
    res = ChinchillaFitter(grid="small", n_jobs=1, bootstrap=30).fit(N, D, L).result()
    path = tmp_path / "fit.json"
    path.write_text(json.dumps(res.to_dict()))
    q = e_prior_from(str(path))
    lo, hi = res.ci["E"]
    assert q.mean == pytest.approx(res.law.E) and q.sd == pytest.approx((hi - lo) / 2 / 1.96)
    res.ci = {}
    path.write_text(json.dumps(res.to_dict()))
    with pytest.raises(UserError, match="no 95% interval"):
        e_prior_from(str(path))
    with pytest.raises(UserError, match="neither a preset"):
        e_prior_from(str(tmp_path / "missing.json"))
    with pytest.raises(UserError, match="not both"):
        ChinchillaFitter(fixed_E=1.7, E_prior=EPrior(1.8, 0.1)).fit(N, D, L)


def test_cli_E_prior(tmp_path, capsys):
    import pandas as pd

    from scaleplan.cli import main

    N, D, L = synthetic(seed=5, outliers=0)
    csv = tmp_path / "runs.csv"
    pd.DataFrame({"N": N, "D": D, "loss": L}).to_csv(csv, index=False)
    base = ["fit", str(csv), "--n-col", "N", "--d-col", "D", "--loss-col", "loss", "--grid", "small", "--no-backtest"]
    assert main([*base, "--E-prior", "2.0,0.0001", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["E"] == pytest.approx(2.0, abs=1e-3) and out["meta"]["E_prior"]["mean"] == 2.0
    for bad, match in ((["--E-prior", "x"], "MEAN,SD"), (["--E-prior", "2,0.1", "--fixed-E", "1.7"], "not both"),
                       (["--E-prior", "2,0.1", "--E-prior-from", "hoffmann2022"], "not both"),
                       (["--E-prior-from", "nope"], "neither a preset")):
        assert main([*base, *bad]) == 2
        err = capsys.readouterr().err.strip()
        assert match in err and "Traceback" not in err and len(err.splitlines()) == 1
