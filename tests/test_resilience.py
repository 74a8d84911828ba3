"""Checkpoint and failure planning (planner/resilience.py), against the published formulas with
numbers worked by hand, the Llama 3 interruption count, and an IBM/fms-fsdp-like full-disk run."""
import math

import pytest

from planner.errors import UserError
from planner.resilience import (DEFAULT_FS_BANDWIDTH, DEFAULT_KEEP, DEFAULT_NODE_MTBF_HOURS, DEFAULT_RESTART_SECONDS,
                                CheckpointPlan, checkpoint_bytes, disk_needed, expected_goodput, job_mtbf_hours,
                                plan_checkpoints, shard_bytes, young_daly_interval, young_interval)

GB = 1e9


# ------------------------------------------------------------------------------------------ sizes
def test_checkpoint_bytes_follow_megatron_accounting():
    # bf16 weights 2 + fp32 main 4 + Adam exp_avg 4 + exp_avg_sq 4 = 14 bytes/param: 7e9 x 14 = 98 GB
    assert checkpoint_bytes(7e9) == pytest.approx(98e9)
    assert checkpoint_bytes(7e9, optimizer="lion") == pytest.approx(70e9)  # 2 + 4 + 4
    # FSDP2 / DCP: fp32 sharded params are the master copy, 4 + 0 + 8 = 12 bytes/param
    assert checkpoint_bytes(7e9, weights_dtype_bytes=4, master_bytes=0) == pytest.approx(84e9)
    assert checkpoint_bytes(1e9, optimizer="none", master_bytes=0) == pytest.approx(2e9)  # weights only
    assert shard_bytes(98e9, 768) == pytest.approx(127_604_166.67, rel=1e-9)


# ---------------------------------------------------------------------------------- interval formulas
def test_young_is_sqrt_two_delta_m():
    assert young_interval(100, 20_000) == pytest.approx(2000.0)  # sqrt(2 x 100 x 20000) = sqrt(4e6)
    assert young_interval(50, 100) == pytest.approx(100.0)


def test_daly_matches_its_published_form_worked_by_hand():
    # delta = 100, M = 20000: delta/2M = 0.0025, sqrt = 0.05
    # tau = 2000 x (1 + 0.05/3 + 0.0025/9) - 100 = 2000 + 33.3333 + 0.5556 - 100 = 1933.8889
    assert young_daly_interval(100, 20_000) == pytest.approx(1933.8889, abs=1e-3)
    # delta = 50, M = 100: delta/2M = 0.25, sqrt = 0.5; tau = 100 x (1 + 1/6 + 1/36) - 50 = 69.4444
    assert young_daly_interval(50, 100) == pytest.approx(69.4444, abs=1e-3)


def test_daly_is_m_when_the_write_takes_two_mtbfs_or_more():
    assert young_daly_interval(200, 100) == 100  # delta = 2M
    assert young_daly_interval(1e6, 100) == 100
    # just below the boundary the series applies: 2M (1 + 1/3 + 1/9) - 2M = 8M/9
    assert young_daly_interval(199.999999, 100) == pytest.approx(800 / 9, rel=1e-6)


def test_daly_reduces_to_young_when_the_write_is_short():
    for delta, m in ((1.0, 1e8), (10.0, 1e9), (0.5, 3.6e6)):
        assert young_daly_interval(delta, m) / young_interval(delta, m) == pytest.approx(1.0, abs=1e-3)
    # and the relative gap shrinks as delta/M does
    gaps = [abs(young_daly_interval(d, 1e6) / young_interval(d, 1e6) - 1) for d in (1e4, 1e3, 1e2, 1e1)]
    assert gaps == sorted(gaps, reverse=True)


def test_interval_grows_with_mtbf_and_shrinks_with_cheaper_writes():
    by_m = [young_daly_interval(100, m) for m in (1e3, 1e4, 1e5, 1e6)]
    assert by_m == sorted(by_m) and len(set(by_m)) == 4
    by_delta = [young_daly_interval(d, 1e4) for d in (1, 10, 100, 1000, 10_000, 19_999)]
    assert by_delta == sorted(by_delta) and len(set(by_delta)) == len(by_delta)


# ------------------------------------------------------------------------------------------ goodput
def test_goodput_is_dalys_expected_time_worked_by_hand():
    # tau = 3600, delta = 360, R = 0, M = 36000: (tau + delta)/M = 0.11
    assert expected_goodput(3600, 360, 0, 36_000) == pytest.approx(3600 / (36_000 * (math.exp(0.11) - 1)))
    assert expected_goodput(3600, 360, 0, 36_000) == pytest.approx(0.86001, abs=1e-5)
    # a restart of 600 s multiplies the wall time by e^(600/36000)
    assert expected_goodput(3600, 360, 600, 36_000) == pytest.approx(
        3600 / (36_000 * math.exp(600 / 36_000) * (math.exp(0.11) - 1)))


def test_goodput_to_first_order_is_the_standard_expected_waste():
    # (tau/(tau+delta)) (1 - (R + (tau+delta)/2)/M): a write per period, per failure a restart and half a period
    tau, delta, r, m = 600.0, 10.0, 60.0, 1e6
    first_order = tau / (tau + delta) * (1 - (r + (tau + delta) / 2) / m)
    assert expected_goodput(tau, delta, r, m) == pytest.approx(first_order, rel=1e-5)


def test_goodput_is_a_fraction_and_moves_the_right_way():
    values = [expected_goodput(t, d, r, m) for t in (60, 3600, 1e5) for d in (0, 10, 1e4)
              for r in (0, 600) for m in (3600, 1e6)]
    assert all(0 < g <= 1 for g in values)
    assert expected_goodput(3600, 0, 0, 1e30) == pytest.approx(1.0)
    assert expected_goodput(3600, 100, 0, 1e5) > expected_goodput(3600, 200, 0, 1e5)  # costlier writes
    assert expected_goodput(3600, 100, 0, 1e5) > expected_goodput(3600, 100, 600, 1e5)  # slower restarts
    assert expected_goodput(3600, 100, 0, 1e5) < expected_goodput(3600, 100, 0, 1e6)  # rarer failures
    assert 0 < expected_goodput(1e4, 1e4, 0, 100) < 1e-80  # hopeless (e^-195) but no overflow
    assert expected_goodput(1e6, 1e6, 1e6, 10) == 0.0  # past float range: 0, still no overflow


def test_the_daly_interval_is_near_the_goodput_maximum():
    for delta, m in ((100, 20_000), (30, 1e5), (500, 5000)):
        tau = young_daly_interval(delta, m)
        best = expected_goodput(tau, delta, 0, m)
        assert best >= expected_goodput(0.8 * tau, delta, 0, m)
        assert best >= expected_goodput(1.25 * tau, delta, 0, m)


# ---------------------------------------------------------------------------------- failure rate
def test_default_failure_rate_reproduces_llama3_interruptions():
    # Dubey et al. 2024 §3.3.4: 419 unexpected interruptions in 54 days on 16,384 H100s (2,048 nodes of 8)
    assert DEFAULT_NODE_MTBF_HOURS == pytest.approx(54 * 24 * 2048 / 419)
    assert DEFAULT_NODE_MTBF_HOURS == pytest.approx(6334.6, abs=0.1)  # 2,654,208 / 419
    job_h = job_mtbf_hours(DEFAULT_NODE_MTBF_HOURS, 2048)
    assert job_h == pytest.approx(3.0931, abs=1e-4)  # 1296 / 419
    assert 54 * 24 / job_h == pytest.approx(419)
    plan = plan_checkpoints(405e9, n_gpus=16_384, gpus_per_node=8, step_seconds=10, train_seconds=54 * 86400)
    assert plan.n_nodes == 2048 and plan.job_mtbf_hours == pytest.approx(job_h)
    assert 54 * 24 / plan.job_mtbf_hours == pytest.approx(419)


def test_job_mtbf_scales_inversely_with_nodes():
    assert job_mtbf_hours(1000, 1) == 1000
    assert job_mtbf_hours(1000, 10) == pytest.approx(100)
    plan = plan_checkpoints(1e9, n_gpus=12, gpus_per_node=8, step_seconds=1, train_seconds=3600,
                            node_mtbf_hours=1000)
    assert plan.n_nodes == 2 and plan.job_mtbf_hours == pytest.approx(500)  # 12 GPUs span 2 nodes


# ------------------------------------------------------------------------------------------ the plan
def test_plan_arithmetic_worked_by_hand():
    p = plan_checkpoints(7e9, n_gpus=768, gpus_per_node=8, step_seconds=2.0, train_seconds=20 * 86400)
    assert p.checkpoint_bytes == pytest.approx(98e9) and p.write_seconds == pytest.approx(98.0)  # at 1 GB/s
    assert p.bytes_per_rank == pytest.approx(98e9 / 768)
    m = 54 * 24 * 2048 / 419 / 96 * 3600  # job MTBF in seconds on 96 nodes
    assert p.optimal_interval_seconds == pytest.approx(
        math.sqrt(2 * 98 * m) * (1 + math.sqrt(98 / (2 * m)) / 3 + 98 / (2 * m) / 9) - 98)
    assert p.interval_steps == round(p.optimal_interval_seconds / 2.0)
    assert p.interval_seconds == p.interval_steps * 2.0
    # restart = 600 s requeue + 98 s reading the checkpoint back
    x = (p.interval_seconds + 98) / m
    assert p.goodput == pytest.approx(p.interval_seconds / (m * math.exp(698 / m) * math.expm1(x)))
    assert p.expected_lost_hours == pytest.approx(20 * 24 * (1 / p.goodput - 1))
    assert p.expected_failures == pytest.approx(20 * 86400 / p.goodput / m)
    assert p.n_checkpoints == 20 * 86400 // p.interval_seconds
    assert p.disk_needed_bytes == pytest.approx((DEFAULT_KEEP + 1) * 98e9)  # 10 kept + 1 being written
    assert (p.fs_bandwidth, p.restart_seconds, p.keep) == (DEFAULT_FS_BANDWIDTH, DEFAULT_RESTART_SECONDS, 10)
    assert 0.9 < p.goodput < 1 and p.warnings() == []


def test_interval_steps_round_to_at_least_one_step():
    p = plan_checkpoints(1e9, n_gpus=8, gpus_per_node=8, step_seconds=1e7, train_seconds=1e8)
    assert p.interval_steps == 1 and p.interval_seconds == 1e7


def test_disk_for_a_retention_policy():
    assert disk_needed(98e9, 100, 2, 10) == pytest.approx((3 + 10) * 98e9)  # 2 kept + 1 writing + 10 archived
    assert disk_needed(98e9, 2, 10) == pytest.approx(2 * 98e9)  # fewer saves than kept
    assert disk_needed(1.0, 50, 5) == 6


def _ibm_like(**kw):
    """A 7B model on 2T tokens, 4M-token batches, 128 A100s at 50% MFU (an fms-fsdp-like run)."""
    tokens_per_step = 1024 * 4096
    steps = 2e12 / tokens_per_step  # 476,837 steps
    step_seconds = 6 * 7e9 * tokens_per_step / (128 * 312e12 * 0.5)  # 8.8 s
    return plan_checkpoints(7e9, n_gpus=128, gpus_per_node=8, step_seconds=step_seconds,
                            train_seconds=steps * step_seconds, **kw)


def test_fms_fsdp_like_run_warns_the_disk_is_too_small():
    # every 2,000 steps, every checkpoint kept: 476,837 // 2000 = 238 saves of 98 GB = 23,324 GB
    p = _ibm_like(interval_steps=2000, keep=10_000, disk_bytes=10e12)
    assert p.n_checkpoints == 238
    assert p.disk_needed_bytes == pytest.approx(238 * 98e9)
    (w,) = p.warnings()
    assert "disk too small" in w and "23,324 GB" in w and "10,000 GB" in w and "add 13,324 GB" in w
    # the default retention (10 + 1 being written = 1,078 GB) on a 1 TB disk: 10 fit, so keep 9
    (w,) = _ibm_like(interval_steps=2000, disk_bytes=1e12).warnings()
    assert "1,078 GB" in w and "lower keep to 9" in w
    assert _ibm_like(interval_steps=2000, disk_bytes=2e12).warnings() == []


def test_short_interval_and_low_goodput_warn():
    p = _ibm_like(interval_steps=1)  # 8.8 s of training per 98 s save
    warnings = p.warnings()
    assert any("interval too short" in w and "98 s" in w for w in warnings)
    assert any("goodput" in w and "below 90%" in w for w in warnings)
    assert p.goodput < 0.1


def test_sources_name_given_inputs():
    p = _ibm_like(fs_bandwidth=5e9, interval_steps=100)
    assert p.sources["fs_bandwidth"] == "given" and p.sources["interval"] == "given"
    assert "Llama 3" in p.sources["node_mtbf"] and "torchtitan" in p.sources["keep"]


def test_round_trip_and_checked_reading():
    p = _ibm_like(disk_bytes=1e12, archive_every=50)
    assert CheckpointPlan.from_dict(p.to_dict()) == p
    for key, bad in (("goodput", 1.5), ("interval_steps", 2.5), ("keep", 0), ("disk_bytes", float("nan")),
                     ("sources", "x"), ("n_ranks", True)):
        with pytest.raises(UserError, match=f"checkpoints.{key}"):
            CheckpointPlan.from_dict({**p.to_dict(), key: bad})
    with pytest.raises(UserError, match="unknown"):
        CheckpointPlan.from_dict({**p.to_dict(), "extra": 1})
    d = p.to_dict()
    del d["goodput"]
    with pytest.raises(UserError, match="lacks"):
        CheckpointPlan.from_dict(d, "plan section checkpoints", "regenerate the plan")


# ------------------------------------------------------------------------------------------ bad inputs
@pytest.mark.parametrize("kw, name", [
    (dict(total_params=0), "total parameters"), (dict(total_params=-7e9), "total parameters"),
    (dict(total_params=float("nan")), "total parameters"), (dict(total_params="7e9"), "total parameters"),
    (dict(n_gpus=0), "n_gpus"), (dict(n_gpus=1.5), "n_gpus"), (dict(n_gpus=True), "n_gpus"),
    (dict(gpus_per_node=0), "gpus_per_node"), (dict(step_seconds=0), "step_seconds"),
    (dict(train_seconds=float("inf")), "train_seconds"), (dict(fs_bandwidth=0), "fs_bandwidth"),
    (dict(node_mtbf_hours=-1), "node MTBF"), (dict(restart_seconds=-1), "restart_seconds"),
    (dict(keep=0), "keep"), (dict(disk_bytes=-1), "disk_bytes"), (dict(interval_steps=0), "interval_steps"),
    (dict(archive_every=0), "archive_every"), (dict(optimizer="sgdx"), "optimizer"),
])
def test_bad_inputs_say_what_and_how(kw, name):
    args = dict(total_params=7e9, n_gpus=8, gpus_per_node=8, step_seconds=1.0, train_seconds=3600.0)
    args.update(kw)
    with pytest.raises(UserError, match=name) as e:
        plan_checkpoints(args.pop("total_params"), **args)
    assert ";" in str(e.value)  # the message names a fix after the problem


def test_a_run_that_never_finishes_is_an_error():
    with pytest.raises(UserError, match="never finish"):
        plan_checkpoints(7e9, n_gpus=16_384, gpus_per_node=8, step_seconds=1, train_seconds=1e6, fs_bandwidth=1)


def test_formula_inputs_are_checked():
    for call in (lambda: young_daly_interval(0, 100), lambda: young_daly_interval(1, float("inf")),
                 lambda: expected_goodput(0, 1, 1, 1), lambda: expected_goodput(1, -1, 1, 1),
                 lambda: job_mtbf_hours(100, 0), lambda: shard_bytes(1e9, 0), lambda: young_interval(-1, 1)):
        with pytest.raises(UserError):
            call()
