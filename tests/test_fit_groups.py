"""Joint fits over groups (planner/fit_groups.py): nothing shared = separate fits; shared exponents are
recovered; other groups' runs beyond the target's compute never enter; CLI errors are one line."""
import json

import numpy as np
import pytest

from planner.errors import UserError
from planner.fit import ChinchillaFitter
from planner.fit_groups import GroupFitter, _layout, parse_share

from test_fit import TRUTH, synthetic

OTHER = dict(E=2.1, A=900.0, B=300.0, alpha=TRUTH["alpha"], beta=TRUTH["beta"])  # same exponents, other data


def _base(**kw):
    return ChinchillaFitter(grid="small", n_jobs=1, **kw)


def test_nothing_shared_equals_separate_fits():
    N, D, L = synthetic(seed=1, noise=0.01, outliers=0)
    N2, D2, L2 = synthetic(seed=2, noise=0.01, outliers=0, law=OTHER)
    g = GroupFitter(_base(), {"b": (N2, D2, L2)}, share=(), target="a").fit(N, D, L)
    sep_a, sep_b = _base().fit(N, D, L), _base().fit(N2, D2, L2)
    for k in ("E", "A", "B", "alpha", "beta"):
        assert getattr(g.law_, k) == pytest.approx(getattr(sep_a.law_, k), rel=1e-5)
        assert getattr(g.group_laws_["b"], k) == pytest.approx(getattr(sep_b.law_, k), rel=1e-5)
    assert g.objective_ == pytest.approx(sep_a.objective_ + sep_b.objective_, rel=1e-7)


def test_shared_exponents_are_common_and_recovered():
    N, D, L = synthetic(seed=3, noise=0.002, outliers=0)
    N2, D2, L2 = synthetic(seed=4, noise=0.002, outliers=0, law=OTHER)
    g = GroupFitter(_base(bootstrap=20), {"b": (N2, D2, L2)}, share=("alpha", "beta"), target="a").fit(N, D, L)
    b = g.group_laws_["b"]
    assert g.law_.alpha == b.alpha and g.law_.beta == b.beta
    assert g.law_.alpha == pytest.approx(TRUTH["alpha"], rel=0.05) and g.law_.beta == pytest.approx(TRUTH["beta"], rel=0.05)
    assert g.law_.E == pytest.approx(TRUTH["E"], rel=0.02) and b.E == pytest.approx(OTHER["E"], rel=0.02)
    assert g.converged_ and g.law_.samples.shape == (20, 5)
    res = g.result().to_dict()
    assert res["meta"]["share"] == ["alpha", "beta"] and set(res["meta"]["groups"]) == {"a", "b"}
    shared_E = GroupFitter(_base(), {"b": (N2, D2, L2)}, share=("alpha", "beta", "E"), target="a").fit(N, D, L)
    assert shared_E.law_.E == shared_E.group_laws_["b"].E


def test_other_groups_enter_only_up_to_the_targets_compute():
    """The backtest's honesty: another group's runs above the target's largest fitted compute are not used,
    so poisoning them changes nothing."""
    N, D, L = synthetic(seed=5, noise=0.005, outliers=0)
    N2, D2, L2 = synthetic(seed=6, noise=0.005, outliers=0, law=OTHER)
    cut = np.quantile(6 * N * D, 0.6)
    fit_rows = 6 * N * D <= cut
    above = 6 * N2 * D2 > cut
    assert above.any()
    L2p = L2.copy()
    L2p[above] *= 1.5

    def law(losses):
        g = GroupFitter(_base(), {"b": (N2, D2, losses)}, ("alpha", "beta"), "a").fit(N[fit_rows], D[fit_rows],
                                                                                      L[fit_rows])
        return g.params_

    assert law(L2) == law(L2p)


def test_layout_and_bad_share():
    idx = _layout(2, ("alpha", "beta"))
    assert list(idx[:, 3]) == [0, 0] and list(idx[:, 4]) == [1, 1] and len(set(idx[:, 0])) == 2
    assert idx.max() == 2 + 2 * 3 - 1
    for bad in ("gamma", "alpha,alpha", "A"):
        with pytest.raises(UserError):
            parse_share(bad)


def test_cli_group_by(tmp_path, capsys):
    import pandas as pd

    from scaleplan.cli import main

    N, D, L = synthetic(seed=7, noise=0.005, outliers=0)
    N2, D2, L2 = synthetic(seed=8, noise=0.005, outliers=0, law=OTHER)
    csv = tmp_path / "runs.csv"
    pd.DataFrame({"N": np.r_[N, N2], "D": np.r_[D, D2], "loss": np.r_[L, L2],
                  "data": ["x"] * N.size + ["y"] * N2.size}).to_csv(csv, index=False)
    base = ["fit", str(csv), "--n-col", "N", "--d-col", "D", "--loss-col", "loss", "--grid", "small"]
    out = tmp_path / "fit.json"
    assert main([*base, "--group-by", "data", "--group", "y", "--no-backtest", "--out", str(out)]) == 0
    assert "joint fit over data sharing alpha,beta" in capsys.readouterr().out
    fit = json.loads(out.read_text())
    assert fit["meta"]["target_group"] == "y" and fit["E"] == pytest.approx(OTHER["E"], rel=0.03)
    assert fit["n_rows"] == N2.size
    for bad, match in ((["--group-by", "nope"], "not a column"), (["--group-by", "data", "--group", "z"], "not a value"),
                       (["--group-by", "data", "--share", "gamma"], "--share"),
                       (["--group-by", "data", "--alpha-eq-beta"], "plain settings"),
                       (["--group-by", "data", "--select", "backtest"], "separate choices")):
        assert main([*base, "--no-backtest", *bad]) == 2
        err = capsys.readouterr().err.strip()
        assert match in err and len(err.splitlines()) == 1
