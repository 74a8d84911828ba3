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


# ---------------------------------------------------------------------------------- μP
def test_mup_plan_is_exported_with_its_multipliers(tmp_path):
    """A Llama config would run a μP checkpoint as SP; the μP export names Granite and μP's multipliers."""
    from test_export_torchtitan import mup_plan

    plan = mup_plan()  # m_d = 4, alpha_in 1.5, alpha_out 2, attn_mult 2, head_dim 64
    export_hf(plan, tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert (cfg["model_type"], cfg["architectures"]) == ("granite", ["GraniteForCausalLM"])
    assert cfg["embedding_multiplier"] == 1.5 and cfg["residual_multiplier"] == 1.0
    assert cfg["attention_multiplier"] == pytest.approx(2.0 / 64)  # attn_mult / d_head, not 1/sqrt(d_head)
    assert cfg["logits_scaling"] == pytest.approx(4 / 2.0)  # logits / (m_d / alpha_out) = logits x alpha_out/m_d
    mup = cfg["scaleplan"]["mup"]
    assert (mup["m_d"], mup["output_multiplier"], mup["attention_scale"]) == (4.0, 0.5, 2.0 / 64)
    assert "llama" in mup["folded_checkpoint"] and ModelShape.from_hf_config(cfg).total_params == plan.shape.total_params
    sp = make_plan(1e21, n_gpus=8)  # no μP: Llama, no multipliers
    export_hf(sp, tmp_path / "sp")
    cfg = json.loads((tmp_path / "sp" / "config.json").read_text())
    assert cfg["model_type"] == "llama" and "logits_scaling" not in cfg and "mup" not in cfg["scaleplan"]


_GRANITE = """
import json, sys
sys.modules["torchvision"] = None
try:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM
except Exception as e:
    print(f"{type(e).__name__}: {e}")
    sys.exit(77)
torch.set_num_threads(1)
folder, mult = sys.argv[1], json.loads(sys.argv[2])
cfg = AutoConfig.from_pretrained(folder)
cfg._attn_implementation = "eager"
torch.manual_seed(0)
granite = AutoModelForCausalLM.from_config(cfg).float().eval()
for name, p in granite.named_parameters():  # q, k large enough for a sharp softmax
    torch.nn.init.normal_(p, std=0.3 if name.endswith(("q_proj.weight", "k_proj.weight")) else 0.05)
plain = {k: v for k, v in cfg.to_dict().items() if k not in (
    "embedding_multiplier", "attention_multiplier", "logits_scaling", "residual_multiplier", "model_type",
    "architectures")}
llama = LlamaForCausalLM(LlamaConfig(**plain)).float().eval()
llama.config._attn_implementation = "eager"
sd = {k: v.clone() for k, v in granite.state_dict().items()}
sd["model.embed_tokens.weight"] *= mult["embedding"]
sd["lm_head.weight"] *= mult["readout"]
for k in sd:
    if k.endswith("q_proj.weight"):
        sd[k] *= mult["query"]
llama.load_state_dict(sd)
x = torch.randint(0, cfg.vocab_size, (2, 16))
with torch.no_grad():
    a, b = granite(x).logits, llama(x).logits
print(json.dumps({"cls": type(granite).__name__, "params": sum(p.numel() for p in granite.parameters()),
                  "diff": (a - b).abs().max().item(), "size": a.abs().max().item()}))
"""


def test_granite_runs_the_mup_forward_that_torchtitan_folds(tmp_path):
    """transformers' Granite with our multipliers equals a plain Llama whose weights carry the folds the
    torchtitan export writes (planner.export.torchtitan.mup_groups): the two exports agree on μP."""
    import subprocess
    import sys

    from test_export_torchtitan import mup_plan

    from planner.export.torchtitan import mup_groups

    plan = mup_plan()
    export_hf(plan, tmp_path)
    mult = {name: g["multiplier"] for name, g in mup_groups(plan).items()}
    r = subprocess.run([sys.executable, "-c", _GRANITE, str(tmp_path), json.dumps(mult)], capture_output=True,
                       text=True, timeout=300)
    if r.returncode == 77:
        skip_or_fail(f"transformers is not importable here ({r.stdout.strip()})")
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["cls"] == "GraniteForCausalLM" and out["params"] == plan.shape.total_params
    assert out["diff"] <= 1e-5 * out["size"]


def test_biases_are_written_and_what_llama_cannot_build_is_refused(tmp_path):
    """LlamaConfig expresses attention_bias/mlp_bias (q, k, v, o and gate, up, down); LayerNorm and partial
    rotary have no Llama form (transformers models/llama/modeling_llama.py): refused, nothing written."""
    from planner.errors import UserError

    small = dict(n_layers=2, d_model=256, d_ffn=512, n_heads=4, head_dim=64, vocab_size=512, seq_len=256)
    plan = make_plan(1e17, shape=ModelShape(**small, attn_bias=True, ffn_bias=True), n_gpus=1, seq_len=256)
    export_hf(plan, tmp_path / "ok")
    cfg = json.loads((tmp_path / "ok" / "config.json").read_text())
    assert (cfg["attention_bias"], cfg["mlp_bias"]) == (True, True)
    assert ModelShape.from_hf_config(cfg).total_params == cfg["scaleplan"]["total_params"] == plan.shape.total_params
    crystal_like = ModelShape(**small, norm="layernorm", attn_bias=True, ffn_bias=True, rotary_fraction=0.25)
    plan = make_plan(1e17, shape=crystal_like, n_gpus=1, seq_len=256)
    with pytest.raises(UserError, match="LayerNorm.*partial rotary"):
        export_hf(plan, tmp_path / "refused")
    assert not (tmp_path / "refused" / "config.json").exists()
