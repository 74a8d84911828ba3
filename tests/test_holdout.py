"""planner.holdout: selection, the report's numbers on a law with known errors, JSON round trip, the study check."""
import json

import numpy as np
import pandas as pd
import pytest

from planner.errors import UserError
from planner.fit import ChinchillaFitter
from planner.holdout import (MIN_LADDER_ROWS_KEPT, HoldoutReport, evaluate_heldout, holdout_check,
                             select_heldout)

TRUTH = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)


def law_loss(N, D):
    return TRUTH["E"] + TRUTH["A"] / N ** TRUTH["alpha"] + TRUTH["B"] / D ** TRUTH["beta"]


def grid_runs(noise=0.002, seed=0):
    rng = np.random.default_rng(seed)
    N = np.repeat(np.geomspace(1e7, 1e9, 6), 5)
    D = N * np.tile([5.0, 10.0, 20.0, 40.0, 80.0], 6)
    return N, D, law_loss(N, D) * np.exp(rng.normal(0, noise, N.size))


def small_fitter(**kw):
    return ChinchillaFitter(grid="small", bootstrap=40, n_jobs=1, seed=3, **kw)


def test_select_picks_the_highest_compute_rows_then_the_extras():
    flops = np.array([5.0, 1.0, 9.0, 7.0, 9.0, 3.0])
    assert select_heldout(flops, 2).tolist() == [2, 4]  # ties keep input order, ascending compute
    assert select_heldout(flops, 3).tolist() == [3, 2, 4]
    eligible = np.array([True, True, False, True, True, True])
    # row 2 is not eligible (an extra run): always held out, after the top eligible rows
    assert select_heldout(flops, 1, eligible).tolist() == [4, 2]
    assert select_heldout(flops, 0, eligible).tolist() == [2]
    assert select_heldout(flops, 0).tolist() == []


def test_known_errors_are_reported():
    """Fit on nearly noise-free runs of a known law; the held-out runs are off by known factors."""
    N, D, L = grid_runs(noise=0.001)
    fitter = small_fitter().fit(N, D, L)
    Nh, Dh = np.array([3e9, 5e9, 1e10]), np.array([6e10, 1e11, 2e11])
    offset = np.array([0.02, -0.01, 0.0])  # measured = truth x (1 + offset)
    measured = law_loss(Nh, Dh) * (1 + offset)
    rep = evaluate_heldout(fitter.law_, Nh, Dh, measured, 6 * Nh * Dh, n_fit=N.size,
                           max_fitted_flops=float((6 * N * D).max()), run_ids=["a", "b", "c"])
    expected = 1 / (1 + offset) - 1  # (truth - measured) / measured
    got = np.array([r.rel_error for r in rep.rows])
    assert got == pytest.approx(expected, abs=2e-3)
    assert rep.max_abs_rel_error == pytest.approx(np.abs(got).max())
    assert rep.mean_abs_rel_error == pytest.approx(np.abs(got).mean())
    assert rep.n_heldout == 3 and rep.n_fit == N.size and rep.goal_met is False
    assert [r.run_id for r in rep.rows] == ["a", "b", "c"]
    assert rep.rows[2].compute_vs_max_fitted == pytest.approx(6 * 1e10 * 2e11 / (6 * N * D).max())
    for r in rep.rows:
        assert r.lo < r.predicted < r.hi
        assert r.inside_interval == (r.lo <= r.measured <= r.hi)
    # the 0-offset run lies inside its prediction interval; the 2 % one, 20x the noise, does not
    assert rep.rows[2].inside_interval and not rep.rows[0].inside_interval
    assert rep.frac_inside_interval == pytest.approx(np.mean([r.inside_interval for r in rep.rows]))


def test_report_round_trips_through_json():
    N, D, L = grid_runs()
    f = small_fitter(holdout_top_compute=0.2).fit(N, D, L)
    rep = f.holdout_
    assert rep.n_heldout == 6 and rep.n_fit == N.size - 6
    # the held-out rows are the 6 of highest compute 6 N D
    assert sorted(r.flops for r in rep.rows) == sorted(np.sort(6 * N * D)[-6:])
    text = json.dumps(rep.to_dict())
    back = HoldoutReport.from_dict(json.loads(text))
    assert back == rep and back.to_dict() == json.loads(text)
    d = json.loads(text)
    assert d["max_abs_rel_error"] == rep.max_abs_rel_error and d["goal"]["met"] == rep.goal_met
    # the fit.json block written by the fitter has the same schema as holdout.json
    fit = json.loads(json.dumps(f.result().to_dict()))
    assert set(fit["holdout"]) == set(d) and HoldoutReport.from_dict(fit["holdout"]) == rep


def test_old_fit_json_block_still_reads():
    old = {"n": 1, "max_rel_error": 0.01, "mean_rel_error": 0.01, "inside_interval": [True], "frac_inside": 1.0,
           "rows": [{"N": 1e9, "D": 2e10, "loss": 2.0, "pred": 2.02, "lo": 1.9, "hi": 2.1}]}
    rep = HoldoutReport.from_dict(old)
    assert rep.n_heldout == 1 and rep.rows[0].measured == 2.0 and rep.rows[0].predicted == 2.02
    assert rep.max_abs_rel_error == pytest.approx(0.01) and rep.rows[0].inside_interval
    with pytest.raises(UserError, match="rows"):
        HoldoutReport.from_dict({"rows": []})


def _study(tmp_path, n_ladder_sizes=6, extra=True):
    N, D, L = grid_runs(seed=1)
    keep = N <= np.unique(N)[n_ladder_sizes - 1]
    df = pd.DataFrame({"run_id": [f"r{i}" for i in range(N.size)], "non_embedding_params": N, "tokens": D,
                       "flops": 6 * N * D, "final_val_loss": L, "status": "ok", "role": "ladder"})[keep]
    rows = [df]
    if extra:
        n, d = 4e9, 8e10
        rows.append(pd.DataFrame([{"run_id": "extra", "non_embedding_params": n, "tokens": d, "flops": 6 * n * d,
                                   "final_val_loss": law_loss(n, d), "status": "ok", "role": "holdout_extra"}]))
    rows.append(df.iloc[:1].assign(run_id="bad", status="diverged", final_val_loss=9.9))
    study = tmp_path / "study"
    study.mkdir()
    pd.concat(rows).to_csv(study / "runs.csv", index=False)
    return study


def test_study_check_writes_the_report_and_figure(tmp_path):
    study = _study(tmp_path)
    rep = holdout_check(study, fitter=small_fitter(), top=2)
    assert rep.n_heldout == 3 and rep.n_fit == 30 - 2  # diverged row ignored
    assert [r.role for r in rep.rows] == ["ladder", "ladder", "holdout_extra"]
    assert rep.rows[-1].compute_vs_max_fitted > 1 and set(rep.fit) >= {"E", "alpha", "ci", "converged", "warnings"}
    assert rep.max_abs_rel_error < 0.02  # the law form is exact, 0.2 % noise
    saved = json.loads((study / "holdout.json").read_text())
    assert saved["n_heldout"] == 3 and saved["meta"]["runs_table"].endswith("runs.csv")
    assert HoldoutReport.from_dict(saved).rows == rep.rows
    assert (study / "holdout.html").stat().st_size > 1000 and (study / "holdout.fig.json").is_file()


def test_study_check_keeps_enough_ladder_runs(tmp_path):
    study = _study(tmp_path, n_ladder_sizes=2, extra=True)  # 10 ladder runs: only 10 - 8 = 2 may go
    rep = holdout_check(study, fitter=small_fitter(), top=5, write=False)
    assert rep.n_heldout == 2 + 1 and 10 - (rep.n_heldout - 1) == MIN_LADDER_ROWS_KEPT
    (tmp_path / "b").mkdir()
    bare = _study(tmp_path / "b", n_ladder_sizes=1, extra=False)  # 5 ladder runs, no extra run
    with pytest.raises(UserError, match="nothing to hold out"):
        holdout_check(bare, fitter=small_fitter(), top=2, write=False)
    with pytest.raises(UserError, match="not found"):
        holdout_check(tmp_path / "nowhere", fitter=small_fitter())
