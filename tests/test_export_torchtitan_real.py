"""The torchtitan export read by the real torchtitan 0.3.0: its own ConfigManager builds the
Trainer.Config from the exported module plus run.sh's overrides (torchtitan/config/manager.py
``ConfigManager.parse_args``: ``--module``/``--config``, then tyro), so a field name or value
torchtitan does not accept fails here; then the model and the optimizer groups are built from it.

Skips where torchtitan is not importable (pip install torchtitan==0.3.0; it also needs triton
on a CPU-only torch) and fails instead under SCALEPLAN_REQUIRE_E2E=1. ``make torchtitan`` installs
it and its dependencies into a folder of their own (``SCALEPLAN_TORCHTITAN_PATH``), outside the
project's venv, so that its pins (datasets, huggingface_hub) never change what the rest runs on.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import skip_or_fail
from test_export_torchtitan import mup_plan

from planner.export.torchtitan import CONFIG_NAME, MODULE_NAME, PATTERNS, export_torchtitan, mup_groups
from planner.plan import Plan, make_plan


@pytest.fixture(scope="module")
def titan():
    """torchtitan's ConfigManager class (the module is imported once per test session)."""
    extra = os.environ.get("SCALEPLAN_TORCHTITAN_PATH")
    if extra and extra not in sys.path:
        sys.path.append(extra)
    try:
        from torchtitan.config import ConfigManager
        import torchtitan.trainer  # noqa: F401  (Trainer.Config, the type parse_args returns)
    except ImportError as e:
        skip_or_fail(f"torchtitan 0.3.0 is not importable ({type(e).__name__}: {e}); "
                     "pip install torchtitan==0.3.0, and triton beside a CPU-only torch")
    return ConfigManager


def _argv(out: Path) -> list[str]:
    """What run.sh hands to ``torchtitan.train`` (torchrun replaced by printf)."""
    env = {**os.environ, "TORCHRUN": "printf %s\\n"}
    lines = subprocess.run(["bash", str(out / "run.sh")], env=env, capture_output=True, text=True, check=True,
                           timeout=30).stdout.splitlines()
    return lines[lines.index("torchtitan.train") + 1:]


def _parse(titan, out: Path, monkeypatch, extra: list[str] = ()):
    monkeypatch.syspath_prepend(str(out))
    monkeypatch.delitem(sys.modules, MODULE_NAME, raising=False)
    return titan().parse_args(_argv(out) + list(extra))


def test_torchtitan_builds_its_config_from_the_export(titan, tmp_path, monkeypatch):
    plan = make_plan(preset="llm-jp-3-1.8b")
    export_torchtitan(plan, tmp_path)
    cfg = _parse(titan, tmp_path, monkeypatch)
    from torchtitan.distributed.activation_checkpoint import SelectiveAC
    from torchtitan.trainer import Trainer

    assert isinstance(cfg, Trainer.Config)
    tr, par, sch, lay = cfg.training, cfg.parallelism, cfg.lr_scheduler, plan.layout
    assert (tr.local_batch_size, tr.global_batch_size, tr.seq_len, tr.steps, tr.max_norm) == (4, 512, 4096, 988_240, 1.0)
    assert (par.data_parallel_shard_degree, par.data_parallel_replicate_degree, par.tensor_parallel_degree,
            par.pipeline_parallel_degree, par.context_parallel_degree) == (lay.dp, 1, 1, 1, 1)
    assert (sch.warmup_steps, sch.decay_type, sch.decay_ratio) == (2000, "cosine", None)
    assert sch.min_lr_factor == pytest.approx(0.1)
    assert (cfg.checkpoint.enable, cfg.checkpoint.interval, cfg.checkpoint.folder) == (
        True, plan.operations.save_interval, "/path/to/checkpoints")
    assert cfg.metrics.log_freq == plan.operations.log_interval
    assert isinstance(cfg.activation_checkpoint, SelectiveAC.Config)
    model = cfg.model_spec.model
    att = model.layers[0].attention
    assert (model.dim, model.vocab_size, len(model.layers), model.enable_weight_tying) == (2048, 99_584, 24, False)
    assert (att.n_heads, att.head_dim, att.rope.dim, att.rope.max_seq_len) == (16, 128, 128, 4096)
    assert model.layers[0].attention_norm.eps == model.norm.eps == 1e-5
    assert [g.optimizer_kwargs["weight_decay"] for g in cfg.optimizer.param_groups] == [0.0, 0.1]


def test_a_field_torchtitan_does_not_know_fails(titan, tmp_path, monkeypatch):
    """What makes the test above a check: tyro and the config dataclasses refuse unknown names."""
    export_torchtitan(make_plan(1e21, n_gpus=8), tmp_path)
    with pytest.raises(SystemExit):
        _parse(titan, tmp_path, monkeypatch, ["--training.micro_batch_size", "2"])
    module = tmp_path / f"{MODULE_NAME}.py"
    module.write_text(module.read_text().replace("TrainingConfig(local_batch_size=", "TrainingConfig(micro_batch="))
    with pytest.raises(TypeError, match="micro_batch"):
        _parse(titan, tmp_path, monkeypatch)


@pytest.mark.parametrize("recompute", ["none", "selective", "full"])
def test_recompute_reaches_torchtitan(titan, recompute, tmp_path, monkeypatch):
    from torchtitan.distributed.activation_checkpoint import FullAC, SelectiveAC

    export_torchtitan(make_plan(1e21, n_gpus=8, recompute=recompute), tmp_path)
    ac = _parse(titan, tmp_path, monkeypatch).activation_checkpoint
    expected = {"none": type(None), "selective": SelectiveAC.Config, "full": FullAC.Config}[recompute]
    assert type(ac) is expected


def test_pipeline_layout_is_megatrons_schedule(titan, tmp_path, monkeypatch):
    """PP 4: Trainer's batch arithmetic gives one accumulation step of grad_accum pipeline microbatches
    (trainer.py "verify batch sizes"), and even stages (pipeline_parallel.py _generate_llm_fqn_per_model_part)."""
    from torchtitan.distributed.pipeline_parallel import _generate_llm_fqn_per_model_part

    plan = make_plan(preset="llama-2-70b", n_gpus=512, tp=8, pp=4, micro_batch=1)
    lay = plan.layout
    export_torchtitan(plan, tmp_path)
    cfg = _parse(titan, tmp_path, monkeypatch)  # Trainer.Config.__post_init__ accepted PP (CUDA graphs off)
    tr, par = cfg.training, cfg.parallelism
    dp = par.data_parallel_shard_degree * par.data_parallel_replicate_degree
    assert (dp, par.tensor_parallel_degree, par.pipeline_parallel_degree) == (lay.dp, 8, 4)
    assert tr.global_batch_size // (tr.local_batch_size * dp) == 1
    assert tr.local_batch_size // par.pipeline_parallel_microbatch_size == lay.grad_accum
    stages = _generate_llm_fqn_per_model_part(lay.pp * lay.vpp, len(cfg.model_spec.model.layers),
                                              par.pipeline_parallel_first_stage_less_layers,
                                              par.pipeline_parallel_last_stage_less_layers)
    assert [sum(n.startswith("layers.") for n in s) for s in stages] == [80 // 4] * 4


def test_sharding_and_context_parallel_reach_torchtitan(titan, tmp_path, monkeypatch):
    for sharding, expected in (("ddp", (1, 8)), ("fsdp", (8, 1))):
        out = tmp_path / sharding
        export_torchtitan(make_plan(1e21, n_gpus=8, sharding=sharding), out)
        par = _parse(titan, out, monkeypatch).parallelism
        assert (par.data_parallel_shard_degree, par.data_parallel_replicate_degree) == expected
    d = make_plan(1e21, n_gpus=8).to_dict()  # the planner picks CP 1 here; a CP 2 layout by hand
    d["layout"].update(cp=2, dp=d["layout"]["dp"] // 2, grad_accum=d["layout"]["grad_accum"] * 2)
    export_torchtitan(Plan.from_dict(d), tmp_path / "cp")
    par = _parse(titan, tmp_path / "cp", monkeypatch).parallelism
    assert (par.context_parallel_degree, par.data_parallel_shard_degree, par.context_parallel_load_balancer) == (
        2, d["layout"]["dp"], "ptrr")


def test_mup_approximation_builds_the_folded_model(titan, tmp_path, monkeypatch):
    """The μP export (approximation accepted) as torchtitan builds it: each parameter lands in its
    folded AdamW group (OptimizersContainer._build_param_groups) and is initialised as μP folded."""
    import torch
    from torchtitan.components.optimizer import OptimizersContainer

    plan = mup_plan()
    export_torchtitan(plan, tmp_path, allow_approximate_mup=True)
    cfg = _parse(titan, tmp_path, monkeypatch)
    torch.manual_seed(0)
    model = cfg.model_spec.model.build()
    model.init_states()
    assert sum(p.numel() for p in model.parameters()) == plan.shape.total_params
    groups, patterns = OptimizersContainer._build_param_groups(model, cfg.optimizer.param_groups, {})
    by_pattern = {pat: g for pat, g in zip(patterns["AdamW"], groups["AdamW"])}
    members = {name: by_pattern[PATTERNS[name]]["param_names"] for name in PATTERNS}
    assert members["embedding"] == ["tok_embeddings.weight"] and members["readout"] == ["lm_head.weight"]
    assert members["query"] == [f"layers.{i}.attention.qkv_linear.wq.weight" for i in range(2)]
    assert len(members["norms"]) == 2 * 2 + 1
    folded = mup_groups(plan)
    for name, g in folded.items():
        assert by_pattern[PATTERNS[name]]["lr"] == pytest.approx(g["lr"]), name
        assert by_pattern[PATTERNS[name]]["eps"] == pytest.approx(g["eps"]), name
    params = dict(model.named_parameters())
    assert not params["lm_head.weight"].any() and not params["layers.0.attention.qkv_linear.wq.weight"].any()
    assert params["tok_embeddings.weight"].std().item() == pytest.approx(folded["embedding"]["init_std"], rel=0.02)
    for name in ("layers.1.attention.wo.weight", "layers.1.feed_forward.w2.weight"):  # μP: no depth scaling
        assert params[name].std().item() == pytest.approx(folded["hidden"]["init_std"], rel=0.05), name


def test_tied_plan_builds_a_tied_model(titan, tmp_path, monkeypatch):
    from test_export_torchtitan import TINY

    from planner.shape import ModelShape

    plan = make_plan(1e17, shape=ModelShape(**TINY, tied=True, seq_len=256), n_gpus=1, seq_len=256)
    export_torchtitan(plan, tmp_path)
    model = _parse(titan, tmp_path, monkeypatch).model_spec.model.build()
    model.init_states()
    assert model.tok_embeddings.weight is model.lm_head.weight  # Decoder.__init__ with enable_weight_tying
    assert sum(p.numel() for p in model.parameters()) == plan.shape.total_params
    assert model.lm_head.weight.std().item() == pytest.approx(plan.training.init_std, rel=0.05)


def test_layernorm_and_biases_build_in_torchtitan(titan, tmp_path, monkeypatch):
    """LayerNorm + attention/FFN biases (GPT-2 / Crystal style): torchtitan's model holds exactly the
    planned parameter count (ModelShape counts, which GPT-2's published count checks in test_shape.py),
    every bias and LayerNorm vector lands in the no-weight-decay group, and biases start at zero."""
    import torch
    from test_export_torchtitan import TINY
    from torchtitan.components.optimizer import OptimizersContainer

    from planner.shape import ModelShape

    shape = ModelShape(**TINY, seq_len=256, norm="layernorm", attn_bias=True, ffn_bias=True)
    plan = make_plan(1e17, shape=shape, n_gpus=1, seq_len=256)
    export_torchtitan(plan, tmp_path)
    cfg = _parse(titan, tmp_path, monkeypatch)
    torch.manual_seed(0)
    model = cfg.model_spec.model.build()
    model.init_states()
    params = dict(model.named_parameters())
    assert sum(p.numel() for p in params.values()) == shape.total_params
    assert sum(p.numel() for n, p in params.items() if n.endswith(".bias")) == (
        shape.n_layers * (shape.attention_bias_params_per_layer + shape.mlp_bias_params_per_layer
                          + 2 * shape.d_model) + shape.d_model)  # + LayerNorm biases (2 per layer, final)
    assert isinstance(model.layers["0"].attention_norm, torch.nn.LayerNorm)
    assert not params["layers.0.attention.wo.bias"].any() and not params["layers.1.feed_forward.w2.bias"].any()
    groups, patterns = OptimizersContainer._build_param_groups(model, cfg.optimizer.param_groups, {})
    no_wd = {n for g in groups["AdamW"] if g["weight_decay"] == 0.0 for n in g["param_names"]}
    assert no_wd == {n for n, p in params.items() if p.ndim == 1}


def test_torchtitan_refuses_what_it_cannot_build(tmp_path):
    """Partial rotary and a plain GELU MLP have no torchtitan 0.3.0 form: refused with the reason."""
    from test_export_torchtitan import TINY

    from planner.errors import UserError
    from planner.shape import ModelShape

    for kw, why in ((dict(rotary_fraction=0.25), "rotary_fraction 0.25"), (dict(activation="gelu"), "GELU")):
        plan = make_plan(1e17, shape=ModelShape(**TINY, seq_len=256, **kw), n_gpus=1, seq_len=256)
        with pytest.raises(UserError, match=why):
            export_torchtitan(plan, tmp_path)


def test_ibm_hsdp_preset_as_torchtitan_reads_it(titan, tmp_path, monkeypatch):
    """fms-fsdp's run (docs/train_details.md: hybrid shard within a node of 8, replicated across 16
    nodes, no activation recomputation, 2 x 4096 per GPU, 3e-4 -> 3e-5 cosine, AdamW 0.9/0.95, wd 0.1)
    through torchtitan's own ConfigManager. torchtitan's mesh is ordered pp, dp_replicate, dp_shard, cp, tp
    (distributed/parallel_dims.py), so with TP = CP = 1 the 8 shard ranks are consecutive: one node."""
    from planner.plan.presets import preset_request

    plan = make_plan(preset_request("ibm-7b-fsdp"))
    export_torchtitan(plan, tmp_path)
    cfg = _parse(titan, tmp_path, monkeypatch)
    par, tr, sch = cfg.parallelism, cfg.training, cfg.lr_scheduler
    assert (par.data_parallel_shard_degree, par.data_parallel_replicate_degree, par.tensor_parallel_degree,
            par.pipeline_parallel_degree, par.context_parallel_degree) == (8, 16, 1, 1, 1)
    assert cfg.activation_checkpoint is None
    assert (tr.local_batch_size, tr.global_batch_size, tr.seq_len, tr.max_norm) == (2, 256, 4096, 1.0)
    assert (sch.warmup_steps, sch.decay_type) == (2000, "cosine") and sch.min_lr_factor == pytest.approx(0.1)
    hidden = cfg.optimizer.param_groups[-1].optimizer_kwargs
    assert (hidden["lr"], hidden["betas"], hidden["weight_decay"]) == (3e-4, (0.9, 0.95), 0.1)
