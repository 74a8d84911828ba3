"""A plan made from a fitted law carries the fit's own diagnostics and flags far extrapolation."""
from __future__ import annotations

import numpy as np

from planner.fit import ChinchillaFitter
from planner.io import write_json
from planner.plan import EXTRAPOLATION_WARN_FACTOR, make_plan


def _synthetic(E: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    N = np.repeat(np.geomspace(1e7, 1e9, 6), 5)
    D = N * np.tile([5.0, 10.0, 20.0, 40.0, 80.0], 6)
    L = E + 400.0 / N ** 0.34 + 410.0 / D ** 0.28
    return N, D, L * np.exp(rng.normal(0, 0.005, N.size))


def test_fit_records_its_range_and_a_plan_far_beyond_it_warns(tmp_path):
    N, D, L = _synthetic(1.7)
    fit = ChinchillaFitter(grid="small").fit(N, D, L)
    d = fit.result().to_dict()
    assert d["meta"]["n_range"] == [N.min(), N.max()]
    assert d["meta"]["d_range"] == [D.min(), D.max()]
    path = write_json(tmp_path / "fit.json", d)

    near = make_plan(1e20, law=str(path), n_gpus=8)  # N* within the fitted decades: no extrapolation warning
    assert not [w for w in near.warnings if "extrapolation" in w]
    far = make_plan(1e25, law=str(path), n_gpus=1024)
    n_star = far.allocation.N
    assert n_star / N.max() > EXTRAPOLATION_WARN_FACTOR
    assert any(w.startswith("N* =") and "extrapolation" in w for w in far.warnings)


def test_unidentified_floor_is_warned_and_reaches_the_plan(tmp_path):
    N, D, L = _synthetic(0.0, seed=1)  # no irreducible loss in the data: E cannot be identified
    fit = ChinchillaFitter(grid="small").fit(N, D, L)
    floor = [w for w in fit.warnings_ if "loss floor" in w]
    assert floor, fit.warnings_
    path = write_json(tmp_path / "fit.json", fit.result().to_dict())
    plan = make_plan(1e20, law=str(path), n_gpus=8)
    assert any(w.startswith("law: E =") for w in plan.warnings)

    good = ChinchillaFitter(grid="small").fit(*_synthetic(1.7, seed=2))
    assert not [w for w in good.warnings_ if "loss floor" in w]
