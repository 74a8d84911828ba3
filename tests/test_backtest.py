"""The backtest (planner.backtest): fit on C <= C_max/k, predict the rest.

Checked against what must hold by construction: on runs drawn from the Chinchilla form itself
with known log-normal noise, noise-free runs are predicted exactly at every extrapolation factor
and noisy ones with errors of the noise's size and ~95 % interval coverage; the split is by
compute; fit.json round-trips; a plan states its factor and the error measured there; the
published Chinchilla runs (Hoffmann et al. 2022 Fig. 4 as extracted by Besiroglu et al. 2024)
give a backtest reaching 100x their largest fitted compute.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli
from planner.backtest import Backtest, parse_factors, run_backtest
from planner.errors import UserError
from planner.fit import ChinchillaFitter, fit_runs
from planner.fit_result import FitResult
from planner.io import write_json
from planner.laws import load_law
from planner.plan.warnings import backtest_warning
from planner.runs import load_runs

TRUE = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)  # Hoffmann et al. 2022, eq. (10)


def _runs(sigma: float, seed: int = 0) -> pd.DataFrame:
    """A ladder of 8 sizes x 6 tokens/param (compute spans 6.5 decades) from the true law."""
    rng = np.random.default_rng(seed)
    N = np.repeat(np.geomspace(1e7, 3e9, 8), 6)
    D = N * np.tile([5.0, 10.0, 20.0, 40.0, 80.0, 160.0], 8)
    L = TRUE["E"] + TRUE["A"] / N ** TRUE["alpha"] + TRUE["B"] / D ** TRUE["beta"]
    L = L * np.exp(rng.normal(0.0, sigma, N.size))
    return pd.DataFrame({"run_id": [f"r{i}" for i in range(N.size)], "N": N, "D": D, "C": 6 * N * D, "loss": L})


def _backtest(df: pd.DataFrame, factors=(3, 10, 30), bootstrap: int = 60) -> Backtest:
    fitter = ChinchillaFitter(grid="small", bootstrap=bootstrap, n_jobs=1)
    return run_backtest(fitter, df["N"], df["D"], df["loss"], df["C"], factors, run_ids=df["run_id"])


def test_noise_free_runs_are_predicted_exactly_at_every_factor():
    bt = _backtest(_runs(0.0), bootstrap=20)
    rows = bt.predictions()
    assert len([s for s in bt.splits if s.report is not None]) == 3
    assert max(r.compute_vs_max_fitted for r in rows) >= 30
    assert max(abs(r.rel_error) for r in rows) < 1e-4


def test_noisy_runs_errors_and_coverage_match_the_noise():
    sigma = 0.01
    bt = _backtest(_runs(sigma, seed=3))
    rows = bt.predictions()
    err = np.abs([r.rel_error for r in rows])
    # each error = the run's own noise (sd sigma) + the refitted law's error: of the noise's size
    assert 0.3 * sigma < err.mean() < 3 * sigma
    assert err.max() < 6 * sigma
    cover = np.mean([r.inside_interval for r in rows])
    assert 0.8 <= cover <= 1.0  # nominal 95 % prediction intervals
    curve = bt.curve()
    assert sum(b.n for b in curve) == len(rows)
    assert [b.lo for b in curve] == sorted(b.lo for b in curve)


def test_selection_is_by_compute_and_too_few_runs_are_skipped():
    df = _runs(0.005, seed=1)
    C = df["C"].to_numpy()
    bt = _backtest(df, factors=(3, 3.01, 1e6), bootstrap=20)
    by_k = {s.factor: s for s in bt.splits}
    s3 = by_k[3.0]
    cutoff = C.max() / 3
    assert s3.n_fit == int((C <= cutoff).sum()) and s3.n_heldout == int((C > cutoff).sum())
    assert s3.report is not None and len(s3.report.rows) == s3.n_heldout
    assert all(r.flops > cutoff for r in s3.report.rows)
    fitted_max = C[C <= cutoff].max()
    assert all(r.compute_vs_max_fitted == pytest.approx(r.flops / fitted_max) for r in s3.report.rows)
    assert max(r.compute_vs_max_fitted for r in s3.report.rows) >= 3
    assert by_k[3.01].report is None and "same" in by_k[3.01].skipped  # the same runs as k = 3
    assert by_k[1e6].report is None and "need 7" in by_k[1e6].skipped


def test_clone_keeps_settings_and_refits_from_scratch():
    f = ChinchillaFitter(grid="small", delta=2e-3, fixed_alpha=0.3, bootstrap=7, seed=3)
    g = f.clone(bootstrap=0)
    assert (g.grid, g.delta, g.fixed_alpha, g.seed, g.bootstrap) == ("small", 2e-3, 0.3, 3, 0)
    assert not hasattr(g, "law_")
    with pytest.raises(TypeError):
        f.clone(nope=1)


def test_parse_factors_rejects_bad_input():
    assert parse_factors("30, 3,10") == (3.0, 10.0, 30.0)
    for bad in ("", "a,3", "1", "0.5,3", "inf"):
        with pytest.raises(UserError):
            parse_factors(bad)


def test_round_trip_through_fit_json_and_the_plan_states_the_factor(tmp_path):
    df = _runs(0.005, seed=2)
    fitter = ChinchillaFitter(grid="small", bootstrap=30, n_jobs=1)
    plain = ChinchillaFitter(grid="small", bootstrap=30, n_jobs=1)
    result = fit_runs(fitter, df, {"n_col": "N"}, backtest_factors=(3, 10, 30))
    # the backtest does not change the fit itself
    assert fit_runs(plain, df, {"n_col": "N"}).law.to_dict() == result.law.to_dict()
    d = result.to_dict()
    path = write_json(tmp_path / "fit.json", d)
    back = FitResult.from_dict(json.loads(path.read_text()))
    assert back.backtest.to_dict() == d["backtest"]
    assert d["backtest"]["law_max_fitted_flops"] == pytest.approx(df["C"].max())

    law = load_law(str(path))
    summary = law.meta["backtest"]
    assert summary["max_factor"] >= 30 and summary["curve"]
    from planner.plan import make_plan

    plan = make_plan(float(df["C"].max()) * 20, law=str(path), n_gpus=64)
    line = [w for w in plan.warnings if w.startswith("extrapolation:")]
    assert len(line) == 1 and "10-30x" in line[0], plan.warnings


def test_backtest_warning_bins_and_beyond_reach():
    curve = [{"lo": 1.0, "hi": 3.0, "n": 5, "median_factor": 2.0, "max_abs_rel_error": 0.01,
              "mean_abs_rel_error": 0.005, "frac_inside_interval": 1.0},
             {"lo": 10.0, "hi": 30.0, "n": 2, "median_factor": 15.0, "max_abs_rel_error": 0.03,
              "mean_abs_rel_error": 0.02, "frac_inside_interval": 0.5}]
    summary = {"law_max_fitted_flops": 6e20, "max_factor": 20.0, "curve": curve}

    class A:
        N, D = 1e9, 1e12  # 6 N D = 6e21: 10x the fitted compute

    text = backtest_warning(summary, A)
    assert "10x the largest fitted" in text and "3.00%" in text and "10-30x" in text
    A.D = 1e14  # 1000x: beyond the backtest's reach
    assert "unmeasured" in backtest_warning(summary, A)
    A.D = 5e11  # 5x: no bin holds it; the nearest (median 2x vs 15x in log) is used and said so
    assert "nearest" in backtest_warning(summary, A) and "1-3x" in backtest_warning(summary, A)
    assert backtest_warning(None, A) is None and backtest_warning({"curve": []}, A) is None


def test_chinchilla_published_runs_give_a_backtest(shared_data):
    df = load_runs(shared_data / "external/chinchilla_epoch2024_svg_extracted.csv", n_col="Model Size",
                   loss_col="loss", flops_col="Training FLOP")
    fitter = ChinchillaFitter(bootstrap=50, n_jobs=1)
    bt = fit_runs(fitter, df, {}, backtest_factors=(3, 10, 30, 100)).backtest
    done = [s for s in bt.splits if s.report is not None]
    assert [s.factor for s in done] == [3.0, 10.0, 30.0, 100.0]  # C spans ~4 decades: every factor has runs
    assert [s.n_fit for s in done] == sorted((s.n_fit for s in done), reverse=True)
    for s in done:
        assert s.n_fit + s.n_heldout == len(df)
        assert max(r.compute_vs_max_fitted for r in s.report.rows) >= s.factor
        assert all(r.lo <= r.predicted <= r.hi and np.isfinite(r.rel_error) for r in s.report.rows)
    goal = bt.goal()
    assert goal["30x"]["n"] >= 1 and goal["100x"]["n"] >= 1
    assert goal["30x"]["met"] == (goal["30x"]["max_abs_rel_error"] <= 0.015
                                  and goal["30x"]["frac_inside_interval"] >= 0.9)


@pytest.fixture(scope="module")
def runs_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("bt") / "runs.csv"
    _runs(0.005, seed=4).rename(columns={"N": "params", "D": "tokens", "loss": "final_loss"}).drop(
        columns="C").to_csv(path, index=False)
    return path


def test_cli_backtest_default_no_backtest_and_bad_factors(runs_csv, tmp_path):
    base = ("fit", runs_csv, "--n-col", "params", "--d-col", "tokens", "--loss-col", "final_loss", "--grid", "small",
            "--bootstrap", "20", "--workers", "1")
    out, plot = tmp_path / "fit.json", tmp_path / "fit.html"
    r = run_cli(*base, "--backtest-factors", "3,30", "--out", out, "--plot", plot)
    assert r.returncode == 0, r.stderr
    assert "backtest" in r.stdout and "goal at >= 30x" in r.stdout
    saved = json.loads(out.read_text())
    assert [s["factor"] for s in saved["backtest"]["splits"]] == [3.0, 30.0]
    assert "Backtest: |error| vs extrapolation factor" in plot.read_text()
    r = run_cli(*base, "--json")
    assert r.returncode == 0, r.stderr
    printed = json.loads(r.stdout)["backtest"]
    assert [s["k"] for s in printed["splits"]] == [3.0, 10.0, 30.0, 100.0] and "rows" not in json.dumps(printed)
    few = tmp_path / "few.csv"
    pd.read_csv(runs_csv).nsmallest(7, "params").to_csv(few, index=False)  # 7 rows: no factor leaves 7 to fit
    r = run_cli(*base[:1], few, *base[2:], "--json")
    assert r.returncode == 0 and "backtest" not in json.loads(r.stdout), r.stderr
    r = run_cli(*base, "--no-backtest", "--json")
    assert r.returncode == 0 and "backtest" not in json.loads(r.stdout)
    for bad in (["--backtest-factors", "0.5"], ["--backtest-factors", "3", "--no-backtest"],
                ["--backtest-factors", "3", "--approach", "2"]):
        r = run_cli(*base, *bad)
        assert r.returncode == 2 and r.stderr.strip().startswith("error:") and len(r.stderr.strip().splitlines()) == 1


def test_app_fit_page_shows_the_backtest(tmp_path, monkeypatch):
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    from app_fixtures import make_study
    from conftest import ROOT

    study = make_study(tmp_path / "studies")
    fit = json.loads((study / "fit.json").read_text())
    fit["backtest"] = _backtest(_runs(0.005, seed=5), factors=(3, 30), bootstrap=20).to_dict()
    (study / "fit.json").write_text(json.dumps(fit))
    monkeypatch.setenv("SCALEPLAN_STUDIES", str(tmp_path / "studies"))
    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=60).run()
    at.switch_page("views/fit.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Backtest" in s.value for s in at.subheader)
    assert any("missed" in m.value or "met" in m.value for m in at.markdown if "Goal at ≥ 30x" in m.value)
    splits = next(df.value for df in at.dataframe if "k" in df.value.columns)
    assert list(splits["k"]) == [3.0, 30.0]
    assert any("Backtest" in (c.proto.spec or "") for c in at.get("plotly_chart"))
