"""The re-planned published runs (issue 15): each preset's plan and exports against the values its
authors ran, flag by flag. The published values are written out here with their file and commit
(read from the fetched repositories; the tests do not need them):

* K2-65B: LLM360/k2-train scripts/pretrain_65b.sh at 869fbb9 (:data:`K2_SCRIPT`).
* IBM 7B FSDP: foundation-model-stack/fms-fsdp at 5a296af, docs/train_details.md, fms_fsdp/config/
  training.py, scripts/train.sh, main_training_llama.py (optimizer), README (128 A100 = 16 x 8).
* Amber 7B: LLM360/amber-train at 64bc595, main.py constants and run.sh (56 nodes x 4 GPUs).
* DMaS-LLaMa-Lite 1.7B: McGill-DMaS/DMaS-LLaMa-Lite-Training-Code presets.py ('2b') and train.py
  defaults; arXiv 2412.13335 (~20B tokens).
* Crystal 7B μP: LLM360/crystalcoder-train pretrain/params/phase{1,2,3}/params.yaml at 03efa544
  (:data:`CRYSTAL_PARAMS`) and its HF port's config.json (:data:`CRYSTAL_HF`). Tied embeddings under
  μP: Crystal shares one matrix (``share_embedding_weights``) with the embedding's init (0.073) and
  unadjusted LR (0.012), scales the input by 14.6 and the logits by 2.22/16; the plan does the same
  (readout group = embedding init and LR, multiplier alpha_out/m_d, no zero init) and so does
  Megatron's --use-mup (the tied output layer is the embedding parameter, tagged
  ``is_embedding_parameter``: base LR and eps; language_module.py at d98e8a64).
"""
from __future__ import annotations

import json
import math

import pytest

from planner.errors import UserError
from planner.export.megatron import build_args, render_megatron
from planner.export.megatron_flags import validate_args
from planner.export.megatron_mup import megatron_effective
from planner.export.megatron_phases import phase_runs
from planner.export.torchtitan import config_module, render_torchtitan, sections
from planner.parallel.dp_traffic import distributed_optimizer_traffic, hsdp_traffic
from planner.parallel.memory import memory_per_gpu
from planner.plan import make_plan
from planner.plan.presets import preset_caveats, preset_names, preset_request
from planner.recipes import REPLANNED

NEW = ("k2-65b", "ibm-7b-fsdp", "amber-7b", "dmas-llama-lite-1.7b")

#: scripts/pretrain_65b.sh, every flag upstream Megatron-LM still has under that name (its
#: --layernorm-epsilon is upstream's --norm-epsilon); True = a bare switch.
K2_SCRIPT = {
    "--position-embedding-type": "rope", "--normalization": "RMSNorm", "--disable-bias-linear": True,
    "--swiglu": True, "--num-layers": 80, "--hidden-size": 8192, "--ffn-hidden-size": 22016,
    "--num-attention-heads": 64, "--seq-length": 2048, "--max-position-embeddings": 2048, "--norm-epsilon": 1e-5,
    "--untie-embeddings-and-output-weights": True, "--tensor-model-parallel-size": 8,
    "--pipeline-model-parallel-size": 4, "--sequence-parallel": True, "--micro-batch-size": 4,
    "--global-batch-size": 2040, "--train-iters": 338_760, "--save-interval": 941, "--lr": 1.5e-4,
    "--lr-decay-style": "cosine", "--min-lr": 1.5e-5, "--weight-decay": 0.1, "--lr-warmup-iters": 2000,
    "--clip-grad": 1.0, "--adam-beta1": 0.9, "--adam-beta2": 0.95, "--hidden-dropout": 0.0,
    "--attention-dropout": 0.0, "--bf16": True, "--log-interval": 1,
}
#: amber-train main.py module constants and main() defaults, run.sh --n_nodes 56 (4 GPUs each).
AMBER = dict(lr=3e-4, min_lr=3e-5, warmup=2000, clip=1.0, wd=0.1, betas=(0.9, 0.95), per_device_batch=10,
             world=56 * 4, examples_per_chunk=1_706_976, chunks=360, seq=2048)
#: fms-fsdp: hybrid shard in a node of 8 x 16 nodes, batch 2 per GPU at 4096, 3e-4 -> 3e-5 over 2T tokens.
IBM = dict(shard=8, replicas=16, per_gpu_batch=2, seq=4096, lr=3e-4, min_lr=3e-5, tokens=2e12, wd=0.1,
           betas=(0.9, 0.95), clip=1.0)


@pytest.fixture(scope="module")
def plans():
    """The four published runs, planned from their presets (with the preset's GPU)."""
    return {name: make_plan(preset_request(name)) for name in NEW}


@pytest.fixture(scope="module")
def flags_json(shared_data):
    return shared_data / "megatron" / "pretrain_gpt_flags.json"


def _args(plan) -> dict:
    return dict(build_args(plan))


def _same(value, published) -> bool:
    if isinstance(published, bool):
        return value is published
    if isinstance(published, float):
        return math.isclose(float(value), published, rel_tol=1e-12)
    return value == published


# ---------------------------------------------------------------------------------- registry
def test_presets_are_registered_with_source_and_caveats():
    assert set(NEW) <= set(preset_names())
    for name in NEW:
        recipe = preset_request(name).recipe
        assert recipe.source and recipe.caveats and preset_caveats(name) == list(recipe.caveats), name
    assert preset_caveats("llama-2-7b") == [] and preset_caveats(None) == []


def test_k2_plan_needs_only_the_preset():
    """`scaleplan plan --preset k2-65b`: nothing else pinned by hand (issue 15's measured gap)."""
    plan = make_plan(preset="k2-65b")
    lay = plan.layout
    assert (lay.tp, lay.pp, lay.dp, lay.micro_batch, lay.grad_accum, lay.sequence_parallel) == (8, 4, 15, 4, 34, True)
    assert (plan.placement.n_gpus, plan.placement.n_nodes) == (480, 60)
    assert plan.memory.fits and plan.time_cost.estimate.days > 0


# ---------------------------------------------------------------------------------- K2-65B
def test_k2_megatron_export_is_pretrain_65b_sh(plans, flags_json):
    plan = plans["k2-65b"]
    a = _args(plan)
    wrong = {f: (a.get(f), v) for f, v in K2_SCRIPT.items() if not _same(a.get(f), v)}
    assert wrong == {}
    # unset in the script: Megatron's defaults (no distributed optimizer, no recompute, decay over all steps)
    assert "--use-distributed-optimizer" not in a and "--recompute-granularity" not in a
    assert a["--lr-decay-iters"] == a["--train-iters"]
    # 32,032 rows as k2-train built them: Megatron pads to a multiple of divisible-by x TP, a no-op here
    assert 32_032 % (a["--make-vocab-size-divisible-by"] * 8) == 0 and plan.shape.padded_vocab == 32_032
    assert plan.tokens == 338_760 * 2040 * 2048 and plan.shape.total_params == 65_286_184_960
    assert validate_args(build_args(plan), flags_json) == []


# ---------------------------------------------------------------------------------- IBM 7B FSDP
def test_ibm_torchtitan_export_is_fms_fsdp_hsdp(plans):
    plan = plans["ibm-7b-fsdp"]
    sec = sections(plan)
    par, tr, sch = sec["parallelism"], sec["training"], sec["lr_scheduler"]
    assert (par["data_parallel_shard_degree"], par["data_parallel_replicate_degree"]) == (IBM["shard"],
                                                                                         IBM["replicas"])
    assert (par["tensor_parallel_degree"], par["pipeline_parallel_degree"], par["context_parallel_degree"]) == (1, 1, 1)
    assert (tr["local_batch_size"], tr["global_batch_size"], tr["seq_len"], tr["max_norm"]) == (
        IBM["per_gpu_batch"], IBM["per_gpu_batch"] * 128, IBM["seq"], IBM["clip"])
    assert tr["global_batch_size"] * tr["seq_len"] == 2 ** 20  # "1M tokens/batch"
    assert tr["steps"] == math.ceil(IBM["tokens"] / 2 ** 20)
    assert (sch["warmup_steps"], sch["decay_type"]) == (2000, "cosine")
    assert sch["min_lr_factor"] == pytest.approx(IBM["min_lr"] / IBM["lr"])
    module = config_module(plan)
    assert "activation_checkpoint=None,  # plan recompute: none" in module
    assert "'betas': (0.9, 0.95)" in module and "'weight_decay': 0.1" in module and "'lr': 0.0003" in module
    assert (plan.placement.gpu, plan.placement.n_nodes, plan.placement.sharding) == ("A100-80GB", 16, "fsdp-hybrid")
    render_torchtitan(plan)  # nothing refused


def test_ibm_megatron_export_refuses_hybrid_shard_with_the_numbers(plans):
    plan = plans["ibm-7b-fsdp"]
    with pytest.raises(UserError, match="cannot express FSDP hybrid sharding") as err:
        render_megatron(plan)
    msg = str(err.value)
    lay = plan.layout
    shape = plan.shape.replace(seq_len=plan.training.seq_len)
    full = memory_per_gpu(shape, lay.replace(shard_group=None)).total / 2 ** 30
    for gib in (plan.memory.breakdown.total / 2 ** 30, full):
        assert f"{gib:.1f} GiB" in msg
    assert "--sharding fsdp" in msg and "--num-distributed-optimizer-instances 16" in msg
    p = plan.shape.total_params
    assert f"{hsdp_traffic(p, 128, 8, 8).inter_node / 1e9:.1f} GB across nodes" in msg


def test_dp_traffic_ring_volumes():
    """Ring collectives by hand (dp_traffic docstring) for the IBM layout, P = 1e9."""
    p = 1e9
    h = hsdp_traffic(p, dp=128, shard=8, gpus_per_node=8)
    assert h.intra_node == pytest.approx(3 * 7 / 8 * 2 * p)
    assert h.inter_node == pytest.approx(2 * 15 / 16 * 2 * p / 8)
    full = hsdp_traffic(p, dp=128, shard=128, gpus_per_node=8)
    assert (full.intra_node, full.inter_node) == (0.0, pytest.approx(3 * 127 / 128 * 2 * p))
    assert distributed_optimizer_traffic(p, 128, 8).inter_node == pytest.approx(127 / 128 * 6 * p)
    assert hsdp_traffic(p, dp=8, shard=8, gpus_per_node=8).inter_node == 0.0


# ---------------------------------------------------------------------------------- Amber 7B
def test_amber_plan_is_amber_train(plans):
    plan = plans["amber-7b"]
    t, lay = plan.training, plan.layout
    steps = AMBER["examples_per_chunk"] // (AMBER["per_device_batch"] * AMBER["world"]) * AMBER["chunks"]
    assert (t.train_iters, t.lr_decay_iters, t.warmup_iters) == (steps, steps, AMBER["warmup"]) == (274_320, 274_320, 2000)
    assert (t.global_batch, t.seq_len) == (AMBER["per_device_batch"] * AMBER["world"], AMBER["seq"])
    assert (t.lr, t.min_lr, t.clip_grad, t.weight_decay, tuple(t.betas)) == (
        AMBER["lr"], AMBER["min_lr"], AMBER["clip"], AMBER["wd"], AMBER["betas"])
    assert (lay.dp, lay.micro_batch, lay.grad_accum, lay.recompute, lay.fsdp, lay.shard_size) == (
        224, 10, 1, "full", True, 224)
    assert (plan.placement.gpus_per_node, plan.placement.n_nodes) == (4, 56)
    assert plan.shape.norm_eps == 1e-6 and plan.shape.total_params == 6_738_415_616
    assert any("CPU offload" in c for c in preset_caveats("amber-7b"))
    a = _args(plan)
    assert (a["--recompute-granularity"], a["--use-torch-fsdp2"], a["--norm-epsilon"]) == ("full", True, 1e-6)
    assert "FullAC.Config()" in config_module(plan)
    # what cannot be represented is said in the launch files, not hidden
    assert "# Published-run caveat: CPU offload" in render_megatron(plan)["launch.sh"]
    assert "Published-run caveat: CPU offload" in render_torchtitan(plan)["scaleplan_model.py"]


# ---------------------------------------------------------------------------------- DMaS 1.7B
def test_dmas_plan_is_the_training_code(plans, flags_json):
    plan = plans["dmas-llama-lite-1.7b"]
    s, t = plan.shape, plan.training
    assert round(s.total_params / 1e8) == 17  # "1.7-billion-parameter"
    assert (s.n_layers, s.d_model, s.d_ffn, s.n_heads, s.n_kv_heads, s.vocab_size, s.tied) == (
        36, 2048, 5120, 32, 8, 50304, False)
    assert (t.global_batch * t.seq_len, t.seq_len, t.train_iters) == (524_288, 1024, math.ceil(20e9 / 524_288))
    assert (t.lr, t.min_lr, t.warmup_iters) == (6e-4, 6e-5, 715)
    a = _args(plan)
    assert (a["--rotary-base"], a["--num-query-groups"], a["--make-vocab-size-divisible-by"]) == (500_000, 8, 128)
    assert validate_args(build_args(plan), flags_json) == []


def test_every_new_preset_reports_memory_and_time(plans):
    for name, plan in plans.items():
        assert plan.memory.breakdown.total > 0 and plan.time_cost.estimate.days > 0, name
    assert set(REPLANNED) == set(NEW)


# ---------------------------------------------------------------------------------- Crystal 7B μP
#: LLM360/crystalcoder-train pretrain/params/phase1/params.yaml at 03efa544085152c3dc54c7d80797046999e78a7b
#: (phase2/3 repeat every value here): model: and optimizer: sections, verbatim numbers.
CRYSTAL_PARAMS = {
    "hidden_size": 4096, "num_hidden_layers": 32, "num_heads": 32, "embeddings_scale": 14.6,
    "output_logits_scale": 0.13875, "decoder_kernel": 0.0625, "scale_qk_dot_by_d": True,
    "share_embedding_weights": True, "embedding_std": 0.073, "initializer_std": 0.01825,
    "output_layer_std": 0.00228125, "eps": 1.0e-09, "weight_decay_rate": 0.1,
    # optimizer.learning_rate: per phase (peak, end); phase 1 is this file, 2 and 3 their params.yaml
    "phase_lrs": [(0.012, 0.00012408), (0.0087825, 0.00013679), (0.002, 0.0002)],
}
#: The HF port's config.json (same commit, finetune/Megatron-LM/CrystalCoder/config.json): output
#: logits are mup_output_alpha x mup_width_scale = 2.22 x 0.0625.
CRYSTAL_HF = {"mup_output_alpha": 2.22, "mup_width_scale": 0.0625, "mup_embeddings_scale": 14.6}


@pytest.fixture(scope="module")
def crystal():
    return make_plan(preset="crystal-7b", data={"checkpoint_dir": "/ckpt"})


def test_crystal_plan_carries_the_published_mup_per_group(crystal):
    P = CRYSTAL_PARAMS
    w, t = crystal.hparams, crystal.training
    assert crystal.is_mup and w.is_mup and crystal.shape.tied and crystal.shape.d_model == P["hidden_size"]
    assert w.m_d == 1 / P["decoder_kernel"] == 16 and w.base_width == 256  # 4096 / 16
    assert w.embedding.multiplier == P["embeddings_scale"] == CRYSTAL_HF["mup_embeddings_scale"]
    assert w.readout.multiplier == P["output_logits_scale"] == CRYSTAL_HF["mup_output_alpha"] * CRYSTAL_HF[
        "mup_width_scale"]
    peak, end = P["phase_lrs"][0]
    assert (w.embedding.lr, w.readout.lr, w.norms.lr) == (peak, peak, peak)  # unadjusted groups
    assert w.hidden.lr == peak * P["decoder_kernel"] == 0.00075
    assert (w.embedding.init_std, w.hidden.init_std) == (P["embedding_std"], P["initializer_std"])
    # tied: the readout IS the embedding matrix: its init and LR are the embedding's, never zero-initialised
    assert w.readout.init_std == w.embedding.init_std and not w.readout_zero_init and not w.query_zero_init
    assert w.attention.scale == 1 / 128 and w.attention.rule == "attn_mult/d_head"  # scale_qk_dot_by_d
    assert w.eps == t.eps == P["eps"] and {g.weight_decay for g in (w.embedding, w.hidden, w.readout)} == {0.1}
    assert w.decay_rule == "unscaled"  # hidden lr x wd is the embedding's / 16: the LR adjusted, wd not
    # Megatron's --lr unit: the hidden LR; embedding/readout at --decoupled-lr with the published min/peak ratio
    assert (t.lr, t.decoupled_lr, t.init_std, t.embedding_init_std) == (0.00075, peak, 0.01825, 0.073)
    assert t.min_lr == pytest.approx(end / 16, rel=1e-15) and t.decoupled_min_lr == pytest.approx(end, rel=1e-15)
    assert w.horizon == {"applied": False, "reason": "the peak LR is the preset's or given, not the hparams'"}
    assert not any("not applied" in x for x in crystal.warnings)
    assert any("hidden-matrix LR" in c for c in preset_caveats("crystal-7b"))


def test_only_crystal_brings_hparams():
    for name in preset_names():
        req = preset_request(name)
        assert (req.hparams is not None) == (name == "crystal-7b"), name
        assert (req.recipe.to_dict()["hparams"] is not None) == (name == "crystal-7b"), name


def test_crystal_megatron_refuses_the_rewarm_under_use_mup_by_default(crystal):
    with pytest.raises(UserError, match=r"phase2 \(rewarm\) needs --override-opt_param-scheduler, .* erases "
                                        r"--use-mup's per-group hidden LR.* by at most 0\.0104% after the phase's "
                                        r"warmup\): pass --allow-approximate-schedule"):
        render_megatron(crystal)


def _crystal_published_rel_error() -> float:
    """max |phase 1's schedule continued - phase 2's published| / published over phase 2's steps after its
    86-step warmup (params.yaml Linear segments; Cerebras's step s of a phase uses the LR at s)."""
    import numpy as np

    (lr1, end1), (lr2, end2), _ = CRYSTAL_PARAMS["phase_lrs"]
    s = np.arange(86, 214_387)
    continued = lr1 - (lr1 - end1) * (79_721 + s - 86) / 294_337
    published = lr2 - (lr2 - end2) * (s - 86) / 214_301
    return float(np.max(np.abs(continued - published) / published))


def test_crystal_megatron_native_mup_export_matches_params_yaml(crystal, flags_json):

    P = CRYSTAL_PARAMS
    files = render_megatron(crystal, allow_approximate_schedule=True)
    out = json.loads(files["megatron_args.json"])
    phases = out["phases"]
    assert list(phases) == ["phase1", "phase2", "phase3"]
    runs = {r.name: r for r in phase_runs(crystal, allow_approximate_schedule=True)}
    assert 0.000104 < _crystal_published_rel_error() < 0.000105  # the 0.0104% the launch states
    note = out["meta"]["phase_notes"]["phase2"]
    assert note.startswith("phase2 (rewarm): APPROXIMATE: phase1's schedule continued instead") and "0.0104%" in note
    assert "0.0104%" in files["launch_phase2.sh"] and phases["phase2"]["--use-checkpoint-opt_param-scheduler"]
    assert "--override-opt_param-scheduler" not in phases["phase2"]
    # --lr/--min-lr are the base (embedding) LRs under --use-mup; phase 2 runs phase 1's (the approximation)
    exported = [P["phase_lrs"][0], P["phase_lrs"][0], P["phase_lrs"][2]]
    for (name, a), (peak, end) in zip(phases.items(), exported):
        assert a["--use-mup"] is True and "--untie-embeddings-and-output-weights" not in a, name  # tied
        assert (float(a["--lr"]), float(a["--min-lr"])) == pytest.approx((peak, end), rel=1e-12), name
        assert "--decoupled-lr" not in a  # wd unscaled: embedding and output layer train at --lr itself
        args = build_args(crystal, phase=runs[name])
        assert validate_args(args, flags_json) == []
        eff = megatron_effective(args)
        g = eff.groups
        scale = float(a["--lr"]) / P["phase_lrs"][0][0]
        assert g["embedding"].lr == pytest.approx(P["phase_lrs"][0][0] * scale, rel=1e-12)
        assert (g["embedding"].init_std, g["embedding"].multiplier) == (P["embedding_std"], P["embeddings_scale"])
        assert g["hidden"].lr == pytest.approx(g["embedding"].lr * P["decoder_kernel"], rel=1e-12)
        assert g["hidden"].init_std == pytest.approx(P["initializer_std"], rel=1e-12)
        # Megatron's depth-scaled output projections = Crystal's output_layer_initializer
        assert g["hidden_out"].init_std == pytest.approx(P["output_layer_std"], rel=1e-12)
        assert (g["readout"].lr, g["readout"].init_std) == (g["embedding"].lr, g["embedding"].init_std)  # tied
        assert g["readout"].multiplier == pytest.approx(P["output_logits_scale"], rel=1e-12)
        assert eff.softmax_scale == 1 / 128 and eff.width_mult == 16
        assert {g[k].weight_decay for k in ("embedding", "hidden", "hidden_out", "readout")} == {
            P["weight_decay_rate"]}
        assert g["embedding"].eps == P["eps"] and g["hidden"].eps == pytest.approx(P["eps"] / 16, rel=1e-12)
    assert phases["phase2"]["--lr-decay-iters"] == phases["phase1"]["--lr-decay-iters"] == "294423"  # 86 + 294,337
    assert phases["phase2"]["--train-iters"] == "294108"  # 79,721 + 214,387 on one counter
    # trainer / plan per group, reported not hidden: all 1 but Megatron's depth-scaled output projections
    # (the plan's hidden std has no depth factor) and its hidden eps / width_mult (Crystal: 1e-9 everywhere)
    ratios = out["meta"]["mup_check"]["groups"]
    for name, r in ratios.items():
        want_init = 1 / math.sqrt(2 * 32) if name == "hidden_out" else 1.0
        want_eps = 1 / 16 if name in ("hidden", "hidden_out") else 1.0
        assert r == pytest.approx(dict(update=1.0, init=want_init, multiplier=1.0, decay=1.0, eps=want_eps),
                                  rel=1e-12), name
    assert out["meta"]["mup_check"]["attention_ratio"] == 1.0

