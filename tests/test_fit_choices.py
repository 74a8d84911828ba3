"""Fitting choices for extrapolation (issue 16 item 3): min compute, compute weights, fixed E, --select backtest."""
import numpy as np
import pytest

from planner.backtest import run_backtest
from planner.errors import UserError
from planner.fit import ChinchillaFitter
from planner.fit_select import CANDIDATES, SelectingFitter
from planner.fit_solver import ParamMap, grid_starts, solve_multistart

from test_fit import TRUTH, synthetic


def test_row_weights_equal_duplicated_rows():
    """Integer weights in the Huber sum are the same problem as repeating those rows."""
    N, D, L = synthetic(seed=3, outliers=0)
    w = np.ones(N.size)
    w[[0, 5, 9]] = [3.0, 2.0, 2.0]
    rep = np.repeat(np.arange(N.size), w.astype(int))
    P = ParamMap.make()
    starts = grid_starts("small")
    a = solve_multistart(np.log(N), np.log(D), np.log(L), starts, P, 1e-3, weights=w)
    b = solve_multistart(np.log(N[rep]), np.log(D[rep]), np.log(L[rep]), starts, P, 1e-3)
    assert a.objective == pytest.approx(b.objective, rel=1e-8)
    assert np.allclose(a.theta, b.theta, atol=1e-6)


def test_compute_weight_follows_the_large_runs():
    """Small runs from another law (a bent small-compute regime): weighting by compute pulls the
    fit towards the law of the large runs, so it predicts a larger run better than the plain fit."""
    N, D, L = synthetic(noise=0.0, outliers=0)
    C = 6 * N * D
    small = C < np.quantile(C, 0.4)
    L = L.copy()
    L[small] *= 1 + 0.04 * np.log10(np.quantile(C, 0.4) / C[small])  # small runs bent upwards
    plain = ChinchillaFitter(grid="small").fit(N, D, L)
    weighted = ChinchillaFitter(grid="small", compute_weight=1.0).fit(N, D, L)
    law = TRUTH
    Nb, Db = 3e9, 6e10  # 10x beyond the largest run in both N and D
    true = law["E"] + law["A"] / Nb ** law["alpha"] + law["B"] / Db ** law["beta"]
    assert abs(weighted.predict(Nb, Db) / true - 1) < abs(plain.predict(Nb, Db) / true - 1)
    assert weighted.result().meta["compute_weight"] == 1.0 and "compute_weight" not in plain.result().meta


def test_min_compute_drops_the_smallest_runs():
    N, D, L = synthetic(seed=1)
    C = 6 * N * D
    cut = float(np.quantile(C, 0.3))
    f = ChinchillaFitter(grid="small", min_compute=cut).fit(N, D, L)
    assert f.n_dropped_ == int((C < cut).sum()) > 0
    assert np.array_equal(f.kept_mask_, C >= cut)
    assert f.result().meta["min_compute"] == cut
    with pytest.raises(UserError, match="rows remain"):
        ChinchillaFitter(grid="small", min_compute=float(C.max())).fit(N, D, L)


def test_fixed_E_holds_E_and_recovers_the_rest():
    N, D, L = synthetic(seed=2, noise=0.002, outliers=0)
    f = ChinchillaFitter(grid="small", fixed_E=TRUTH["E"], bootstrap=30).fit(N, D, L)
    assert f.law_.E == pytest.approx(TRUTH["E"], rel=1e-12)
    assert f.ci_["E"][0] == pytest.approx(TRUTH["E"]) and f.ci_["E"][1] == pytest.approx(TRUTH["E"])
    assert f.params_["alpha"] == pytest.approx(TRUTH["alpha"], abs=0.02)
    assert f.params_["beta"] == pytest.approx(TRUTH["beta"], abs=0.02)
    assert f.converged_
    with pytest.raises(UserError, match="not below the lowest fitted loss"):
        ChinchillaFitter(grid="small", fixed_E=float(L.min())).fit(N, D, L)
    with pytest.raises(UserError, match="fixed_E"):
        ChinchillaFitter(fixed_E=-1.0).fit(N, D, L)


def test_select_backtest_chooses_by_inner_backtest_without_peeking():
    N, D, L = synthetic(seed=4, noise=0.003, outliers=0)
    C = 6 * N * D
    assert set(CANDIDATES) == {"free", "alpha=beta", "compute-weighted (p=1)", "drop smallest third of log C"}
    two = {k: CANDIDATES[k] for k in ("free", "drop smallest third of log C")}  # two candidates keep this test short
    sel = SelectingFitter(ChinchillaFitter(bootstrap=20, n_jobs=1), two, inner_factors=(3.0,))
    sel.fit(N, D, L)
    s = sel.selection_
    assert set(s["scores"]) == set(two) and all(np.isfinite(v) and v < 0.05 for v in s["scores"].values())
    assert s["chosen"] == min((k for k, v in s["scores"].items() if np.isfinite(v)), key=s["scores"].get)
    assert sel.result().meta["select"]["chosen"] == s["chosen"]
    bt = run_backtest(sel, N, D, L, C, (3.0,))
    for split in bt.splits:
        if split.report is None:
            continue
        rows = C <= C.max() / split.factor
        alone = SelectingFitter(ChinchillaFitter(n_jobs=1), two, inner_factors=(3.0,)).fit(N[rows], D[rows], L[rows])
        # the split's choice and law are those of a selector that never saw the held-out runs
        assert split.report.fit["selected"] == alone.selection_["chosen"]
        assert split.report.fit["alpha"] == pytest.approx(alone.law_.alpha, rel=1e-6)
    assert bt.splits[0].report is not None and "selected" in bt.split_table()[0]


def test_cli_options_reach_the_fit(tmp_path, capsys, monkeypatch):
    import json

    import pandas as pd

    import planner.fit_select
    from scaleplan.cli import main

    # the forms' candidates are tested in test_select_with_forms_and_prior; Farseer's refits cost seconds
    monkeypatch.setattr(planner.fit_select, "FORM_CANDIDATES", {})
    N, D, L = synthetic(seed=5, outliers=0)
    csv = tmp_path / "runs.csv"
    pd.DataFrame({"N": N, "D": D, "loss": L}).to_csv(csv, index=False)
    base = ["fit", str(csv), "--n-col", "N", "--d-col", "D", "--loss-col", "loss", "--grid", "small"]
    cut = float(np.quantile(6 * N * D, 0.2))
    assert main([*base, "--no-backtest", "--fixed-E", "1.69", "--min-compute", str(cut), "--compute-weight", "0.5",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["E"] == pytest.approx(1.69) and out["n_dropped"] == int((6 * N * D < cut).sum())
    assert out["meta"]["fixed_E"] == 1.69 and out["meta"]["compute_weight"] == 0.5
    assert main([*base, "--select", "backtest", "--backtest-factors", "3", "--out", str(tmp_path / "fit.json")]) == 0
    text = capsys.readouterr().out
    assert "selected by inner backtest:" in text and "[selected:" in text
    fit = json.loads((tmp_path / "fit.json").read_text())
    assert fit["meta"]["select"]["chosen"] in fit["meta"]["select"]["scores"]
    for bad, match in ((["--compute-weight", "-1"], "expected"), (["--fixed-E", "0"], "expected"),
                       (["--approach", "2", "--select", "backtest"], "approach 3 only")):
        try:
            rc = main([*base, *bad])
        except SystemExit as e:  # argparse type errors exit from the parser
            rc = e.code
        assert rc == 2
        assert match in capsys.readouterr().err


def test_select_never_sees_the_holdout_rows():
    """With --holdout-top-compute, the held-out runs are outside the inner backtest too: changing their
    losses changes neither the scores nor the choice."""
    N, D, L = synthetic(seed=6, noise=0.003, outliers=0)
    two = {k: CANDIDATES[k] for k in ("free", "alpha=beta")}

    def selection(losses):
        base = ChinchillaFitter(holdout_top_compute=0.2, bootstrap=20, n_jobs=1)
        return SelectingFitter(base, two, inner_factors=(3.0,)).fit(N, D, losses).selection_

    top = np.argsort(-(N * D))[:7]  # round(0.2 * 35) = 7 highest-compute runs
    L2 = L.copy()
    L2[top] *= 1.3
    a, b = selection(L), selection(L2)
    assert a["scores"] == b["scores"] and a["chosen"] == b["chosen"]


def test_select_with_forms_and_prior():
    """Forms and a prior on E are candidates like the others: a form can be chosen and then is the fit; with
    a prior in the base fitter, only the "E prior" candidate carries it."""
    from planner.fit_forms import FORMS, FormLaw
    from planner.fit_prior import EPrior
    from planner.fit_select import FORM_CANDIDATES, default_candidates

    N, D, _ = synthetic(seed=8, outliers=0)
    theta = np.array([np.log(1e13), np.log(5e12), 0.08, 0.11])  # data from Kaplan's form: it should win
    L = FormLaw(FORMS["kaplan"], theta).predict(N, D) * np.exp(np.random.default_rng(0).normal(0, 0.002, N.size))
    cands = {k: v for k, v in {**CANDIDATES, **FORM_CANDIDATES}.items() if k in ("free", "form kaplan", "form gadre")}
    sel = SelectingFitter(ChinchillaFitter(grid="small", n_jobs=1), cands, inner_factors=(3.0,)).fit(N, D, L)
    assert sel.selection_["chosen"] == "form kaplan" and sel.fitter_.form == "kaplan"
    assert sel.result().meta["form"]["form"] == "kaplan"
    base = ChinchillaFitter(E_prior=EPrior(1.8, 0.05))
    all_c = default_candidates(base)
    assert set(FORM_CANDIDATES) <= set(all_c) and any(k.startswith("E prior") for k in all_c)
    prior_name = next(k for k in all_c if k.startswith("E prior"))
    assert all_c[prior_name](np.array([1.0])) == {} and all_c["free"](np.array([1.0]))["E_prior"] is None
