"""Hugging Face export: config.json builds a LlamaForCausalLM with exactly the planned parameter count."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import skip_or_fail

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


_LOAD = """
import sys
sys.modules["torchvision"] = None  # Llama needs no torchvision; a mismatched build breaks the import
try:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
except Exception as e:
    print(f"{type(e).__name__}: {e}")
    sys.exit(77)
torch.set_num_threads(1)
counts = []
for folder in sys.argv[1:]:  # the exported folders
    config = LlamaConfig.from_pretrained(folder)
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    counts.append(str(sum(p.numel() for p in model.parameters())))
print(" ".join(counts))
"""


def test_transformers_loads_the_export_with_the_planned_parameter_count(tmp_path):
    """transformers reads our config.json; its meta-device model has exactly the planner's count."""
    plans = [make_plan(preset="llm-jp-3-1.8b"),  # MHA, untied, padded vocab
             make_plan(preset="llama-2-70b", n_gpus=512, tp=8, pp=4, micro_batch=1)]  # GQA
    folders = []
    for i, plan in enumerate(plans):
        export_hf(plan, tmp_path / str(i))
        folders.append(str(tmp_path / str(i)))
    r = subprocess.run([sys.executable, "-c", _LOAD, *folders], capture_output=True, text=True, timeout=300)
    if r.returncode == 77:
        skip_or_fail(f"transformers' Llama is not importable here ({r.stdout.strip()})")
    assert r.returncode == 0, r.stderr[-2000:]
    counts = [int(c) for c in r.stdout.strip().splitlines()[-1].split()]
    assert counts == [p.model_shape.total_params for p in plans]
