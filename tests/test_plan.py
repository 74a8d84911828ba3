"""make_plan / Plan / Budget: published recipes, budget conversions, μP, warnings, reference scenarios."""
from __future__ import annotations

import math

import pytest
import yaml

from planner.errors import UserError
from planner.hparams import HParams
from planner.io import write_json
from planner.parallel.layout import Layout
from planner.plan import Budget, Plan, make_plan
from planner.plan.presets import preset_names


@pytest.fixture(scope="module")
def llmjp():
    return make_plan(preset="llm-jp-3-1.8b")


def test_llmjp_preset_reproduces_the_published_run(llmjp):
    # llm-jp/scripts v3-1.8b-exp2 train.sh + model card (shared/data/references/llmjp_v3_1p8b_megatron.json)
    p = llmjp
    s = p.model_shape
    assert s.total_params == 1_867_614_208 and s.padded_vocab == 99_584
    assert p.tokens == 2_072_488_058_295
    t = p.training
    assert (t.global_batch, t.seq_len, t.train_iters) == (512, 4096, 988_240)
    assert (t.warmup_iters, t.lr_decay_iters) == (2000, 986_240)
    assert (t.lr, t.min_lr, t.schedule) == (3e-4, 3e-5, "cosine")
    assert (t.betas, t.eps, t.weight_decay, t.clip_grad) == ([0.9, 0.95], 1e-8, 0.1, 1.0)
    lay = p.layout
    assert (p.placement.n_gpus, lay.tp, lay.pp, lay.dp, lay.micro_batch) == (64, 1, 1, 64, 4)
    assert lay.distributed_optimizer and lay.recompute == "selective"
    assert p.memory.fits


def test_gpu_hours_budget_round_trips():
    b = Budget.from_gpu_hours(50_000, "h100", mfu=0.4)
    assert b.flops == pytest.approx(50_000 * 3600 * 989e12 * 0.4)
    p = make_plan(b, n_gpus=64)
    # a GPU-time budget is a deadline: the layout's MFU sets the tokens, and the training time plus
    # the expected failures, restarts and checkpoint writes (goodput) fill the GPU-hours; rounding
    # up to whole steps adds less than one step
    e = p.time_cost.estimate
    assert e.mfu == pytest.approx(p.layout_options[0].mfu)
    step_hours = p.training.global_batch * p.training.seq_len * p.training.flops_per_token / (
        64 * 989e12 * e.mfu) / 3600 * 64
    assert e.gpu_hours / p.checkpoints.goodput == pytest.approx(50_000, abs=step_hours + 1e-6)
    pinned = make_plan(b, n_gpus=64, mfu=0.4)
    assert pinned.time_cost.estimate.mfu == 0.4
    d = Budget.from_gpu_days(64, 10, "h100", mfu=0.4)
    assert d.flops == pytest.approx(64 * 10 * 24 * 3600 * 989e12 * 0.4)


@pytest.mark.parametrize("preset, published_gpu_hours, source", [
    ("llama-2-7b", 184_320, "Touvron et al. 2023 (Llama 2) Table 2, A100-80GB"),
    ("llama-65b", 1_022_362, "Touvron et al. 2023a (LLaMA) Table 15, A100-80GB"),
])
def test_time_estimate_matches_published_gpu_hours(preset, published_gpu_hours, source):
    p = make_plan(preset=preset, gpu="a100", n_gpus=2048, mfu=0.45)
    assert p.time_cost.estimate.gpu_hours == pytest.approx(published_gpu_hours, rel=0.15), source


def test_budget_plan_invariants():
    from planner.laws import DEFAULT_LAW, load_law

    C = 3e21
    p = make_plan(C, n_gpus=32)
    law = load_law(DEFAULT_LAW).optimal(C)
    assert p.allocation.N == pytest.approx(law.N) and p.allocation.D == pytest.approx(law.D)
    s, t = p.model_shape, p.training
    assert p.choice.band[0] <= s.total_params <= p.choice.band[1] or p.choice.chosen.baseline
    assert p.tokens == int(C / s.flops_per_token_megatron)
    assert t.train_iters == math.ceil(p.tokens / (t.global_batch * t.seq_len))
    assert t.lr_decay_iters == t.train_iters and t.warmup_iters <= 0.05 * t.train_iters
    assert t.min_lr == pytest.approx(0.1 * t.lr)
    assert "DeepSeek" in t.lr_source and 1e-4 < t.lr < 3e-3
    assert len(p.candidates) >= 2 and all(c.rules for c in p.candidates)
    assert t.global_batch % p.layout.dp == 0
    assert isinstance(p.layout, Layout) and p.validate_layout() == []
    p.layout.check(s, p.placement.n_gpus, t.global_batch, t.seq_len)


def test_wsd_schedule():
    t = make_plan(1e21, schedule="wsd", n_gpus=8).training
    assert t.schedule == "wsd" and t.wsd_decay_iters == round(0.2 * t.train_iters)


def test_mup_hparams_give_per_group_lrs():
    hp = HParams(base_width=256, lr=6e-3, init_std=0.08, warmup_frac=0.02, weight_decay=0.1)
    p = make_plan(1e21, hparams=hp, n_gpus=8)
    m = p.model_shape.d_model / 256
    t = p.training
    assert t.lr == pytest.approx(6e-3 / m)  # Megatron's --lr = hidden-matrix LR
    assert t.decoupled_lr == pytest.approx(6e-3)  # embedding + output layer
    assert t.init_std == pytest.approx(0.08 / math.sqrt(m))
    assert t.embedding_init_std == pytest.approx(0.08)
    assert t.weight_decay == pytest.approx(0.1 * m)
    assert t.warmup_iters == round(0.02 * t.train_iters)
    assert p.hparams.readout.multiplier == pytest.approx(1 / m)
    assert p.is_mup


def test_sp_hparams_warn():
    p = make_plan(1e21, hparams=HParams(parameterization="sp", base_width=128, lr=1e-3), n_gpus=8)
    assert any("no transfer guarantee" in w for w in p.warnings)
    assert p.training.lr == 1e-3 and not p.is_mup


def test_fit_json_bootstrap_gives_a_ci_band(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    base = np.array([1.69, 406.4, 410.7, 0.34, 0.28])
    samples = base * (1 + 0.02 * rng.standard_normal((40, 5)))
    path = write_json(tmp_path / "fit.json", {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28,
                                              "bootstrap": {"n": 40, "samples": samples.tolist()}})
    p = make_plan(1e21, law=str(path), n_gpus=8)
    lo, hi = p.allocation.ci["N"]
    assert lo < p.allocation.N < hi


def test_inference_aware_and_data_constrained():
    plain = make_plan(1e22, n_gpus=64)
    inf = make_plan(1e22, inference_tokens=1e13, n_gpus=64)
    assert inf.allocation.N < plain.allocation.N  # Sardana et al.: smaller, longer-trained
    assert any("inference-aware" in w for w in inf.warnings)
    scarce = make_plan(1e22, unique_tokens=2e10, n_gpus=64)
    assert scarce.allocation.mode.startswith("data-constrained")
    assert any("epochs" in w for w in scarce.warnings)


def test_target_loss_plan():
    p = make_plan(None, target_loss=2.3, n_gpus=8)
    assert p.allocation.mode == "target-loss" and p.allocation.loss == pytest.approx(2.3)


def test_plan_hash_and_round_trip(llmjp, tmp_path):
    h = llmjp.plan_hash
    assert len(h) == 64
    back = Plan.read(llmjp.write(tmp_path / "plan.yaml"))
    assert back.plan_hash == h and back.to_dict()["meta"]["plan_hash"] == h
    assert Plan.from_dict(yaml.safe_load(llmjp.to_yaml())).plan_hash == h
    edited = llmjp.to_dict()
    edited["training"]["lr"] = 1e-4
    changed = Plan.from_dict(edited)
    assert changed.plan_hash != h and any("edited" in w for w in changed.warnings)
    again = make_plan(preset="llm-jp-3-1.8b")
    assert again.plan_hash == h  # meta (time, command) is not hashed


def test_reference_7b_fsdp_hybrid_fits_80gb():
    # Llama-2-7B shape, 2T tokens, 1M-token batch (256 x 4096), AdamW 3e-4 -> 3e-5 cosine,
    # FSDP hybrid shard (within an 8-GPU node, replicate across nodes), micro-batch 2, seq 4096.
    p = make_plan(preset="llama-2-7b", global_batch=256, micro_batch=2, tp=1, pp=1, n_gpus=64,
                  sharding="fsdp-hybrid")
    lay = p.layout
    assert lay.fsdp and lay.shard_group == 8 and lay.dp == 64
    assert p.training.global_batch * p.training.seq_len == 1_048_576
    assert (p.training.lr, p.training.min_lr, p.training.warmup_iters) == (3e-4, 3e-5, 2000)
    assert p.memory.fits and p.memory.breakdown.total < 80e9


def test_reference_65b_on_480_gpus():
    p = make_plan(preset="llama-65b", n_gpus=480, tp=8, pp=4, micro_batch=1, global_batch=1920)
    lay = p.layout
    assert (lay.tp, lay.pp, lay.dp, p.placement.n_nodes) == (8, 4, 15, 60)
    assert lay.sequence_parallel
    assert p.validate_layout() == []
    assert p.memory.fits and p.memory.breakdown.total < 80e9


@pytest.mark.parametrize("kwargs, msg", [
    (dict(budget=1e10), "no model shape"),
    (dict(budget=1e21, gpu="tpu-v9"), "unknown GPU"),
    (dict(preset="llm-jp-3-1.8b", tp=3, n_gpus=48), "heads|TP"),
    (dict(preset="no-such-model"), "unknown preset"),
    (dict(budget=None), "give a budget"),
    (dict(budget=-5.0), "positive"),
])
def test_bad_input(kwargs, msg):
    with pytest.raises(UserError, match=msg):
        make_plan(**kwargs)


def test_bad_budget_constructors():
    with pytest.raises(UserError, match="MFU"):
        Budget.from_gpu_hours(10, "h100", mfu=40)
    with pytest.raises(UserError, match="GPUs"):
        Budget.from_gpu_days(0, 3, "h100")


def test_plan_request_is_the_same_as_keyword_options():
    from planner.plan import PlanRequest

    kw = dict(n_gpus=8, schedule="wsd", hparams=HParams(base_width=256, lr=6e-3))
    assert make_plan(PlanRequest(budget=Budget.from_flops(1e21), **kw)).plan_hash == make_plan(1e21, **kw).plan_hash


def test_budget_from_options_reads_exactly_one():
    assert Budget.from_options(flops=1e21).flops == 1e21
    assert Budget.from_options(gpus=64, days=10, gpu="h100", mfu=0.4).how == "gpus_days"
    assert Budget.from_options(gpu_hours=1e4, gpu="a100").gpu == "A100-80GB"
    assert Budget.from_options(preset="llama-2-7b") is None and Budget.from_options(target_loss=2.3) is None
    with pytest.raises(UserError, match="exactly one"):
        Budget.from_options(flops=1e21, preset="llama-2-7b")
    with pytest.raises(UserError, match="--gpus"):
        Budget.from_options(days=3)


def test_a_registered_preset_runs_the_same_steps():
    from planner.plan import PlanRequest, preset_request, register_preset

    published = preset_request("llama-2-7b")
    assert published.recipe.source.startswith("Touvron") and published.shape.d_model == 4096
    register_preset("llama-2-7b-short", lambda: preset_request("llama-2-7b").replace(global_batch=512))
    p = make_plan(PlanRequest(preset="llama-2-7b-short", n_gpus=64))
    assert p.preset == "llama-2-7b" and p.training.global_batch == 512 and p.training.lr == 3e-4
    assert p.allocation.is_preset and p.allocation.source == published.recipe.source


def test_plan_yaml_round_trips_byte_identical(llmjp, tmp_path):
    path = llmjp.write(tmp_path / "plan.yaml")
    assert Plan.read(path).to_yaml() == path.read_text()
    mup = make_plan(1e21, hparams=HParams(base_width=256, lr=6e-3), n_gpus=8, schedule="wsd")
    assert Plan.from_dict(yaml.safe_load(mup.to_yaml())).to_yaml() == mup.to_yaml()


def test_a_broken_section_is_a_user_error(llmjp):
    d = llmjp.to_dict()
    del d["training"]["train_iters"]
    with pytest.raises(UserError, match="section training"):
        Plan.from_dict(d)


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_plans_with_nothing_else_given(name):
    """`scaleplan plan --preset NAME` alone must give a plan: a default GPU count of 88 (a multiple of
    8) once left no layout whose data-parallel size divides Llama 2's 1024-sequence batch."""
    plan = make_plan(preset=name)
    lay = plan.layout
    assert plan.training.global_batch % (lay.dp * lay.micro_batch) == 0
    assert plan.memory is None or plan.memory.fits
