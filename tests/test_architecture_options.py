"""Architecture options (LayerNorm, biases, partial rotary, tying) and the z-loss in the Megatron-LM
export: each flag checked against Megatron's own parser dump (shared/data/megatron/
pretrain_gpt_flags.json) and its semantics in Megatron-LM (planner/export/architecture.py docstring:
``add_bias_linear`` covers QKV, linear_proj, fc1 and fc2; ``--rotary-percent`` a fraction of the head)."""
from __future__ import annotations

import json

import pytest

from planner.errors import UserError
from planner.export.architecture import megatron_architecture_args, megatron_vocab_multiple, z_loss
from planner.export.megatron import build_args, render_megatron
from planner.export.megatron_flags import validate_args
from planner.export.torchtitan import render_torchtitan
from planner.plan import make_plan
from planner.plan import presets
from planner.recipes import RECIPES
from planner.shape import ModelShape, pad_vocab

SMALL = dict(n_layers=4, d_model=512, d_ffn=1408, n_heads=4, vocab_size=32000, seq_len=1024)
#: LLM360 Crystal's architecture choices (issue 15): LayerNorm, biases in attention and FFN, rotary on
#: 32 of 128 head dims, tied embeddings.
CRYSTAL_LIKE = dict(norm="layernorm", attn_bias=True, ffn_bias=True, rotary_fraction=0.25, tied=True)


@pytest.fixture(scope="module")
def flags_json(shared_data):
    return shared_data / "megatron" / "pretrain_gpt_flags.json"


def test_crystal_like_shape_maps_to_megatron_flags(flags_json):
    shape = ModelShape(**SMALL, head_dim=128, **CRYSTAL_LIKE)
    a = dict(megatron_architecture_args(shape))
    assert a["--normalization"] == "LayerNorm" and a["--rotary-percent"] == 0.25
    assert "--disable-bias-linear" not in a and "--add-qkv-bias" not in a  # add_bias_linear (default True)
    assert "--untie-embeddings-and-output-weights" not in a  # Megatron ties by default
    plan = make_plan(1e18, shape=shape, n_gpus=1, seq_len=1024)
    assert validate_args(build_args(plan), flags_json) == []


def test_llama_shape_keeps_its_flags():
    a = dict(megatron_architecture_args(ModelShape(**SMALL)))
    assert (a["--normalization"], a["--disable-bias-linear"], a["--untie-embeddings-and-output-weights"]) == (
        "RMSNorm", True, True)
    assert "--rotary-percent" not in a


@pytest.mark.parametrize("kw,which", [(dict(attn_bias=True), "attention"), (dict(ffn_bias=True), "FFN")])
def test_biases_on_one_side_only_are_refused(kw, which):
    with pytest.raises(UserError, match=f"biases on the {which} projections only"):
        megatron_architecture_args(ModelShape(**SMALL, **kw))


@pytest.mark.parametrize("vocab,tp", [(32_032, 8), (32_000, 8), (50_304, 1), (32_000, 1), (99_584, 4)])
def test_vocab_multiple_makes_megatrons_padding_a_no_op(vocab, tp):
    """Megatron pads to ceil(V / (m TP)) m TP (_vocab_size_with_padding); with our m it keeps V rows."""
    m = megatron_vocab_multiple(ModelShape(**{**SMALL, "vocab_size": vocab}), tp)
    assert pad_vocab(vocab, m, tp) == vocab and m <= 128


def test_vocab_multiple_refuses_a_vocab_tp_cannot_split():
    with pytest.raises(UserError, match="pad_vocab_to"):
        megatron_vocab_multiple(ModelShape(**{**SMALL, "vocab_size": 32_001}), 2)
    assert megatron_vocab_multiple(ModelShape(**{**SMALL, "vocab_size": 32_001, "pad_vocab_to": 64}), 2) == 64


def test_z_loss_is_warned_with_its_coefficient_not_dropped(monkeypatch):
    """Megatron-LM has no LM-loss z-loss flag (only --moe-z-loss-coeff), torchtitan's CrossEntropyLoss no
    z-loss term: both exports carry the coefficient as a warning instead of dropping it silently."""
    recipe = RECIPES["dmas-llama-lite-1.7b"]
    with_z = type(recipe)(**{**recipe.__dict__, "name": "zloss-test", "z_loss": 1e-4})
    monkeypatch.setitem(presets._REGISTRY, "zloss-test", lambda: presets.published_run(with_z))
    plan = make_plan(presets.preset_request("zloss-test"))
    assert z_loss(plan) == 1e-4
    files = render_megatron(plan)
    assert "# WARNING: the plan's z-loss 0.0001" in files["launch.sh"]
    assert json.loads(files["megatron_args.json"])["meta"]["z_loss"]["applied"] is False
    assert not any("z_loss" in k or "z-loss" in k for k, _ in build_args(plan) if k != "--moe-z-loss-coeff")
    tt = render_torchtitan(plan)
    assert "z-loss 0.0001" in tt["scaleplan_model.py"] and "z-loss 0.0001" in tt["run.sh"]
    plain = make_plan(presets.preset_request("dmas-llama-lite-1.7b"))
    assert z_loss(plain) == 0.0 and "z-loss" not in render_megatron(plain)["launch.sh"]
