"""Hugging Face export: config.json builds a LlamaForCausalLM with exactly the planned parameter count."""
from __future__ import annotations

import json

import pytest
from conftest import skip_or_fail
from hf_meta import meta_param_counts

from planner.export.hf import export_hf
from planner.plan import make_plan
from planner.shape import ModelShape


@pytest.fixture(scope="module")
def llmjp_plan():
    return make_plan(preset="llm-jp-3-1.8b")


def test_config_json_fields_match_the_published_llmjp_config(llmjp_plan, tmp_path):
    export_hf(llmjp_plan, tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    # llm-jp/llm-jp-3-1.8b config.json (notes §2)
    expected = dict(hidden_size=2048, intermediate_size=7168, num_hidden_layers=24, num_attention_heads=16,
                    num_key_value_heads=16, head_dim=128, vocab_size=99584, max_position_embeddings=4096,
                    rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False, attention_bias=False,
                    mlp_bias=False)
    assert {k: cfg[k] for k in expected} == expected
    assert cfg["scaleplan"]["plan_hash"] == llmjp_plan.plan_hash
    assert ModelShape.from_hf_config(cfg).total_params == 1_867_614_208


def test_transformers_loads_the_export_with_the_planned_parameter_count(tmp_path):
    """transformers reads our config.json; its meta-device model has exactly the planner's count."""
    plans = [make_plan(preset="llm-jp-3-1.8b"),  # MHA, untied, padded vocab
             make_plan(preset="llama-2-70b", n_gpus=512, tp=8, pp=4, micro_batch=1)]  # GQA
    folders = []
    for i, plan in enumerate(plans):
        export_hf(plan, tmp_path / str(i))
        folders.append(str(tmp_path / str(i)))
    counts, why = meta_param_counts({str(i): folder for i, folder in enumerate(folders)})
    if counts is None:
        skip_or_fail(why)
    assert [counts[str(i)] for i in range(len(plans))] == [p.model_shape.total_params for p in plans]
