"""The Plan page's figures and tables of the plan's choices (app/figures.py, app/planview.py).

Checks that each figure carries the plan's own numbers: the band figure's curve is the plan's law
along the budget's iso-FLOP line with its minimum at N*, the band is shaded between the plan's
edges, the chosen and baseline markers are the plan's options; the sensitivity figure has one bar
per law with the plan's N marked; the layout figure has one bar per searched layout against the
GPU's capacity and the memory margin.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

pytest.importorskip("plotly")
pytest.importorskip("streamlit")

from app.figures import band_figure, layout_figure, layout_label, sensitivity_figure  # noqa: E402
from app.planview import band_table, layout_table, plan_law, sensitivity_table  # noqa: E402
from planner.laws import DEFAULT_LAW, PRESETS, load_law  # noqa: E402
from planner.plan import Budget, make_plan  # noqa: E402


@pytest.fixture(scope="module")
def plan():
    return make_plan(Budget.from_flops(1e22))


def _trace(fig, name: str):
    found = [t for t in fig.data if t.name == name]
    assert len(found) == 1, (name, [t.name for t in fig.data])
    return found[0]


def test_band_figure_carries_the_plans_band(plan):
    ch, a = plan.choice, plan.allocation
    assert ch is not None and a.law == DEFAULT_LAW
    law = plan_law(plan)
    fig = band_figure(plan, law)
    chosen = _trace(fig, "chosen")
    assert list(chosen.x) == [plan.shape.total_params]
    assert list(chosen.y) == pytest.approx([ch.chosen.loss])
    assert plan.layout.describe() in chosen.customdata[0]  # hover: the chosen layout
    base = [o for o in ch.options if o.baseline]
    assert list(_trace(fig, "baseline").x) == [o.total_params for o in base]
    others = [o for o in ch.options if not (o.chosen or o.baseline)]
    if others:
        assert sorted(_trace(fig, "other options").x) == sorted(o.total_params for o in others)
    # the shaded band is the plan's [N_lo, N_hi]
    rect = [s for s in fig.layout.shapes if s.type == "rect"]
    assert [(r.x0, r.x1) for r in rect] == [tuple(ch.band)]
    # the curve is the law at D = C / 6N, lowest at N* with L*
    curve = fig.data[0]
    N = np.asarray(curve.x)
    assert np.asarray(curve.y) == pytest.approx(law.predict(N, a.C / (6.0 * N)))
    assert N[np.argmin(curve.y)] == pytest.approx(a.N, rel=0.05)
    assert min(curve.y) == pytest.approx(a.loss, rel=1e-5)
    assert N.min() < ch.band[0] and N.max() > ch.band[1]


def test_band_figure_without_a_law_keeps_the_options(plan):
    fig = band_figure(plan, None)
    assert not any(t.mode == "lines" for t in fig.data)
    both = int(plan.choice.chosen.baseline)  # the compute-optimal shape won: one option in two traces
    assert sum(len(t.x) for t in fig.data if t.name != "N* (law optimum)") == len(plan.choice.options) + both


def test_plan_law_loads_presets_and_fits_only(plan):
    assert plan_law(plan).name == DEFAULT_LAW
    assert plan_law(plan, "hoffmann2022").name == "hoffmann2022"
    unnamed = dataclasses.replace(plan, allocation=dataclasses.replace(plan.allocation, law="demo fit"))
    assert plan_law(unnamed) is None  # a study's fit named after the study: not loadable by name


def test_sensitivity_figure_has_one_bar_per_law(plan):
    fig = sensitivity_figure(plan)
    n_star, penalty = _trace(fig, "N*"), _trace(fig, "penalty")
    assert list(n_star.y) == list(PRESETS) == [v.law for v in plan.sensitivity]
    assert list(n_star.x) == pytest.approx([load_law(k).optimal(1e22, interval=None).N for k in PRESETS])
    assert list(penalty.x) == pytest.approx([100 * v.penalty for v in plan.sensitivity])
    assert [s.x0 for s in fig.layout.shapes if s.type == "line"] == [plan.shape.total_params]
    own = list(n_star.y).index(DEFAULT_LAW)
    assert n_star.marker.color[own] != n_star.marker.color[(own + 1) % len(PRESETS)]  # the plan's law stands out
    table = sensitivity_table(plan)
    assert len(table) == len(PRESETS) and table["law"].str.endswith("(this plan's)").sum() == 1


def test_sensitivity_lists_the_plans_own_fitted_law_first():
    from planner.scaling_law import ScalingLaw

    own = ScalingLaw(E=1.8, A=450.0, B=2000.0, alpha=0.34, beta=0.36, name="my fit")
    p = make_plan(Budget.from_flops(1e21), law=own, loss_tolerance=0)
    fig = sensitivity_figure(p)
    assert list(_trace(fig, "N*").y) == ["my fit", *PRESETS]
    assert plan_law(p, own) is own and p.choice is None


def test_layout_figure_against_capacity_and_margin(plan):
    opts = plan.layout_options
    cap = plan.memory.capacity_gib
    fig = layout_figure(opts, cap, 0.1, plan.placement.gpu)
    days, mem = _trace(fig, "days"), _trace(fig, "memory")
    assert list(days.x) == pytest.approx([o.days for o in opts])
    assert list(mem.x) == pytest.approx([o.memory_gib for o in opts])
    assert days.y[0] == layout_label(0, opts[0].layout) and "plan" in days.y[0] and "plan" not in days.y[1]
    assert days.y[0].startswith("#1 plan: TP")
    assert sorted(s.x0 for s in fig.layout.shapes if s.type == "line") == pytest.approx([0.9 * cap, cap])
    table = layout_table(opts)
    assert list(table["full layout"]) == [o.layout for o in opts]
    assert opts[0].layout == plan.layout.describe()


def test_band_table_puts_the_chosen_first(plan):
    t = band_table(plan.choice)
    assert t.iloc[0][""] == "chosen" and t.iloc[0]["layers"] == plan.shape.n_layers
    assert len(t) == len(plan.choice.options)
    assert (t[""] == "baseline").sum() == (0 if plan.choice.chosen.baseline else 1)
