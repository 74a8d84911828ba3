"""The plan's size decision: default law, near-optimal band, joint shape x layout choice, law
sensitivity, serving cap, eval cadence and checkpoints (issue 13 items 1, 2, 6-8)."""
from __future__ import annotations

import math

import pytest

from planner.errors import UserError
from planner.hardware import get_gpu
from planner.laws import DEFAULT_LAW, PRESETS, load_law
from planner.plan import Budget, Plan, make_plan
from planner.plan.joint_choice import DAYS_TIE, near_optimal_band
from planner.plan.operations import EVAL_OVERHEAD, MIN_EVALS


@pytest.fixture(scope="module")
def flops_plan():
    return make_plan(1e23)


@pytest.fixture(scope="module")
def deadline_plan():
    return make_plan(Budget.from_gpu_days(64, 14, "h100"))


def test_default_law_is_chinchilla_consistent():
    """Chinchilla itself: 70B parameters on 1.4T tokens at 5.76e23 FLOPs (Hoffmann et al. 2022, Table 1
    and §4.1), ~20 tokens/param (their Approaches 1 and 2, Table 3). The default law lands there; the
    paper's rounded Approach-3 constants (hoffmann2022) put the optimum at 32B and 93 tokens/param,
    the inconsistency Besiroglu et al. 2024 (§4) report."""
    default = load_law(DEFAULT_LAW).optimal(5.76e23)
    assert 60e9 < default.N < 85e9 and 15 < default.tokens_per_param < 25
    rounded = load_law("hoffmann2022").optimal(5.76e23)
    assert rounded.tokens_per_param > 80 and rounded.N < 40e9
    for C in (1e21, 1e23, 1e25):
        assert 15 < load_law(DEFAULT_LAW).optimal(C).tokens_per_param < 25
    assert make_plan(1e22).allocation.law == DEFAULT_LAW


def test_cli_and_request_defaults_name_the_same_law():
    from planner.plan import PlanRequest
    from scaleplan.cli import build_parser

    parser = build_parser()
    for verb in (["plan", "--flops", "1e22"], ["optimal", "--flops", "1e22"], ["loss", "--tokens", "1e9",
                                                                                "--params", "1e8"]):
        assert parser.parse_args(verb).law == DEFAULT_LAW
    assert PlanRequest().law == DEFAULT_LAW


@pytest.mark.parametrize("C", [1e21, 1e23, 1e25])
@pytest.mark.parametrize("tol", [0.001, 0.0025, 0.01])
def test_band_edges_sit_at_the_tolerance(C, tol):
    law = load_law(DEFAULT_LAW)
    lo, hi = near_optimal_band(law, C, tol)
    opt = law.optimal(C, interval=None)
    assert lo < opt.N < hi
    for n in (lo, hi):
        assert law.predict(n, C / (6 * n)) == pytest.approx(opt.loss * (1 + tol), rel=1e-9)
    # inside the band the loss is below the edge; outside above (convex iso-FLOP valley)
    for n, inside in ((math.sqrt(lo * opt.N), True), (lo * 0.9, False), (hi * 1.1, False)):
        assert (law.predict(n, C / (6 * n)) <= opt.loss * (1 + tol)) is inside
    wider = near_optimal_band(law, C, tol * 2)
    assert wider[0] < lo and wider[1] > hi


def test_band_rejects_a_bad_tolerance():
    for bad in (0, -0.1, 1.5, float("nan")):
        with pytest.raises(UserError, match="tolerance"):
            near_optimal_band(load_law(DEFAULT_LAW), 1e22, bad)


def test_flops_budget_takes_the_fastest_option_in_the_band(flops_plan):
    ch = flops_plan.choice
    assert ch.objective == "fastest" and len(ch.options) >= 2
    assert sum(o.baseline for o in ch.options) == 1
    win = ch.chosen
    soonest = min(o.days for o in ch.options)
    assert win.days <= soonest * (1 + DAYS_TIE)
    assert win.loss == min(o.loss for o in ch.options if o.days <= soonest * (1 + DAYS_TIE))
    assert all(ch.band[0] * 0.97 <= o.total_params <= ch.band[1] * 1.03 for o in ch.options if not o.baseline)
    assert (win.total_params, win.n_layers, win.d_model) == (flops_plan.shape.total_params, flops_plan.shape.n_layers,
                                                             flops_plan.shape.d_model)
    base = next(o for o in ch.options if o.baseline)
    assert ch.days_saved == pytest.approx(max(0.0, base.days - win.days))
    assert flops_plan.time_cost.estimate.days == pytest.approx(win.days)


def test_deadline_budget_takes_the_lowest_loss_at_the_deadline(deadline_plan):
    ch = deadline_plan.choice
    assert ch.objective == "lowest-loss"
    win = ch.chosen
    assert win.loss == min(o.loss for o in ch.options)
    law = load_law(DEFAULT_LAW)
    assert win.loss == pytest.approx(law.predict(deadline_plan.shape.total_params, deadline_plan.tokens))
    # every option trains for the deadline: tokens follow its own layout's speed, less failures
    goodput = deadline_plan.checkpoints.goodput
    for o in ch.options:
        assert o.days == pytest.approx(14.0 * goodput, rel=0.01)
    base = next(o for o in ch.options if o.baseline)
    assert ch.loss_gained == pytest.approx(max(0.0, base.loss - win.loss))


def test_zero_tolerance_keeps_the_shape_nearest_n_star():
    plan = make_plan(1e22, loss_tolerance=0)
    assert plan.choice is None
    assert abs(plan.shape.total_params / plan.allocation.N - 1) < 0.1


def test_law_sensitivity_lists_every_published_law(flops_plan):
    views = {v.law: v for v in flops_plan.sensitivity}
    assert set(views) == set(PRESETS)
    own = views[DEFAULT_LAW]
    assert own.N == pytest.approx(flops_plan.allocation.N, rel=1e-9)
    for name, v in views.items():
        law = load_law(name)
        assert v.chosen_loss == pytest.approx(law.predict(flops_plan.shape.total_params, flops_plan.tokens))
        same = law.optimal(6 * flops_plan.shape.total_params * flops_plan.tokens, interval=None)
        assert v.penalty == pytest.approx(v.chosen_loss / same.loss - 1, abs=1e-12)
    # a plan sized by the default law costs more than 1% loss under none of them at this budget,
    # but hoffmann2022's optimum is ~2-3x smaller with ~3x more tokens per parameter
    assert views["hoffmann2022"].tokens_per_param > 2.5 * own.tokens_per_param


def test_eval_cadence_checks_the_predicted_loss(flops_plan):
    o, t = flops_plan.operations, flops_plan.training
    assert o.eval_iters > 0 and o.eval_interval > 0
    assert t.train_iters // o.eval_interval >= MIN_EVALS
    assert o.eval_iters / 3.0 / o.eval_interval <= EVAL_OVERHEAD * 1.001  # forward = 1/3 of a train step
    assert o.predicted_loss == pytest.approx(load_law(DEFAULT_LAW).predict(flops_plan.shape.total_params,
                                                                           flops_plan.tokens))
    assert o.save_interval == flops_plan.checkpoints.interval_steps and o.save_interval_source == "young-daly"


def test_a_small_disk_is_warned_and_failures_cost_time():
    plan = make_plan(1e23, disk_bytes=1e12)
    c = plan.checkpoints
    assert c.disk_needed_bytes > 1e12
    assert any("disk too small" in w for w in plan.warnings)
    # Megatron's distributed checkpoint: bf16 weights + fp32 main params + Adam m, v = 14 bytes/param
    assert c.checkpoint_bytes == pytest.approx(14 * plan.shape.total_params)
    assert 0.9 < c.goodput < 1.0


def test_serving_cap_limits_n_and_states_its_cost():
    free = make_plan(1e24, loss_tolerance=0)
    capped = make_plan(1e24, loss_tolerance=0, serve_on="a100-80gb,bf16")
    sv = capped.serving
    assert sv.binding and sv.n_max < free.shape.total_params
    assert capped.allocation.N == pytest.approx(sv.n_max)
    assert sv.penalty > 0 and sv.loss > sv.loss_opt
    # bf16 weights of the capped model fit 90% of an A100-80GB (vLLM's default utilisation), and a
    # model 10% larger would not leave room for the KV cache
    hbm = get_gpu("a100-80gb").memory_bytes
    assert 2 * sv.n_max < 0.9 * hbm < 2 * 1.1 * sv.n_max
    assert capped.shape.total_params < free.shape.total_params
    loose = make_plan(1e21, loss_tolerance=0, serve_on="h100")
    assert not loose.serving.binding and loose.serving.penalty == 0


def test_new_sections_round_trip(deadline_plan, tmp_path):
    path = deadline_plan.write(tmp_path / "plan.yaml")
    back = Plan.read(path)
    assert back.plan_hash == deadline_plan.plan_hash
    assert back.choice == deadline_plan.choice and back.sensitivity == deadline_plan.sensitivity
    assert back.layout_options == deadline_plan.layout_options and back.checkpoints == deadline_plan.checkpoints


@pytest.mark.parametrize("section, value, msg", [
    ("choice", {"tolerance": 2.0}, "choice.tolerance"),
    ("sensitivity", [{"law": "x"}], "sensitivity"),
    ("operations", {"eval_iters": 0}, "operations"),
    ("layout_options", [{"layout": "TP1", "memory_gib": -1, "mfu": 0.4, "days": 1, "why": ""}], "memory_gib"),
])
def test_broken_new_sections_are_user_errors(deadline_plan, section, value, msg):
    d = deadline_plan.to_dict()
    if isinstance(value, dict) and isinstance(d[section], dict):
        d[section] = {**d[section], **value}
    else:
        d[section] = value
    with pytest.raises(UserError, match=msg):
        Plan.from_dict(d)
