"""Time and cost from FLOPs, checked against published training runs."""
import pytest

from planner.cost import (estimate_time, flops_from_cost, flops_from_gpu_days, flops_from_gpu_hours,
                          mfu_from_throughput, resolve_mfu)
from planner.errors import UserError
from planner.hardware import DEFAULT_PRICE_PER_GPU_HOUR, get_gpu
from planner.shape import preset_shape


def test_llama1_65b_throughput_gives_21_days():
    # Touvron et al. 2023a (LLaMA) §2.4: 65B processes ~380 tokens/s/GPU on 2048 A100-80GB,
    # 1.4T tokens take "approximately 21 days".
    shape = preset_shape("llama-65b")
    fpt = 6.0 * shape.total_params
    mfu = mfu_from_throughput(380, fpt, "a100")
    assert 0.4 < mfu < 0.55  # 380 x 6 x 65.3e9 / 312e12
    t = estimate_time(1.4e12 * fpt, "a100", 2048, mfu)
    assert t.days == pytest.approx(1.4e12 / (380 * 2048) / 86400, rel=1e-9)
    assert 20 < t.days < 22


def test_llama2_gpu_hours_imply_a_plausible_mfu():
    # Touvron et al. 2023b (Llama 2) Table 2: 7B on 2T tokens took 184,320 A100-80GB GPU-hours.
    shape = preset_shape("llama-2-7b")
    flops = 6.0 * shape.total_params * 2e12
    at_half = flops_from_gpu_hours(184_320, "a100", 0.5)
    implied_mfu = 0.5 * flops / at_half
    assert 0.3 < implied_mfu < 0.5
    # and estimate_time inverts flops_from_gpu_hours
    t = estimate_time(flops, "a100", 1024, implied_mfu)
    assert t.gpu_hours == pytest.approx(184_320, rel=1e-9)


def test_arithmetic_and_defaults():
    g = get_gpu("h100")
    t = estimate_time(989e12 * 0.4 * 8 * 3600, "h100", 8)  # one hour on 8 GPUs at the default MFU
    assert t.mfu == g.default_mfu == 0.40
    assert t.hours == pytest.approx(1.0)
    assert t.gpu_hours == pytest.approx(8.0)
    assert t.cost == pytest.approx(8.0 * DEFAULT_PRICE_PER_GPU_HOUR)
    t2 = estimate_time(1e21, "h100", 16, 0.5, price_per_gpu_hour=3.0)
    assert t2.cost == pytest.approx(t2.gpu_hours * 3.0)
    assert t2.to_dict()["days"] == pytest.approx(t2.seconds / 86400)
    assert resolve_mfu("b200", None) < resolve_mfu("h100", None) < resolve_mfu("a100", None)


def test_budget_conversions_round_trip():
    c = flops_from_gpu_days(512, 30, "h200", 0.4)
    assert c == pytest.approx(512 * 30 * 86400 * 989e12 * 0.4)
    assert estimate_time(c, "h200", 512, 0.4).days == pytest.approx(30)
    assert flops_from_cost(1000.0, "h100", 0.4, price_per_gpu_hour=2.5) == pytest.approx(
        flops_from_gpu_hours(400.0, "h100", 0.4))


@pytest.mark.parametrize("call", [
    lambda: estimate_time(-1, "h100", 8),
    lambda: estimate_time(1e20, "h100", 0),
    lambda: estimate_time(1e20, "h100", 8, mfu=40),
    lambda: estimate_time(1e20, "h100", 8, price_per_gpu_hour=-1),
    lambda: estimate_time(float("nan"), "h100", 8),
    lambda: flops_from_gpu_hours(0, "h100"),
    lambda: estimate_time(1e20, "tpu", 8),
])
def test_bad_input_is_a_user_error(call):
    with pytest.raises(UserError):
        call()


def test_time_estimate_round_trips_through_its_dict():
    from planner.cost import TimeEstimate

    est = estimate_time(1e22, "h100", 64, 0.4, price_per_gpu_hour=2.5)
    assert TimeEstimate.from_dict(est.to_dict()) == est
    with pytest.raises(UserError, match="unknown time/cost fields"):
        TimeEstimate.from_dict({**est.to_dict(), "speed": 1})
