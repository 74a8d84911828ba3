"""ModelShape arithmetic against published numbers, independent formulas and invariants.

Every expected count below was published by someone else (model cards, HF safetensors metadata,
papers); none was produced by this code. Sources are named next to each number.
"""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hf_meta import meta_param_counts
from planner.errors import UserError
from planner.shape import PRESETS, ModelShape, pad_vocab, preset_shape

# (preset, published total, published embedding or None, published non-embedding or None, source)
PUBLISHED = [
    ("llama-2-7b", 6_738_415_616, None, None, "HF meta-llama/Llama-2-7b-hf safetensors total"),
    ("llama-2-13b", 13_015_864_320, None, None, "HF meta-llama/Llama-2-13b-hf safetensors total"),
    ("llama-2-70b", 68_976_648_192, None, None, "HF meta-llama/Llama-2-70b-hf safetensors total"),
    ("llama-3-8b", 8_030_261_248, None, None, "HF meta-llama/Meta-Llama-3-8B safetensors total"),
    ("llama-65b", 65_285_660_672, None, None, "pyllama LLaMA-65B parameter dump (trainable_params)"),
    ("llm-jp-3-1.8b", 1_867_614_208, 407_896_064, 1_459_718_144, "llm-jp-3 model card table"),
    ("llm-jp-3-3.7b", None, 611_844_096, 3_171_068_928, "llm-jp-3 model card table"),
    ("llm-jp-3-13b", None, 1_019_740_160, 12_688_184_320, "llm-jp-3 model card table"),
    ("tinyllama-1.1b", 1_100_048_384, None, None, "HF TinyLlama/TinyLlama-1.1B safetensors total"),
    ("mistral-7b", 7_241_732_096, None, None, "GGUF general.parameter_count of Mistral-7B"),
    ("llama-3.2-1b", 1_235_814_400, None, None, "HF meta-llama/Llama-3.2-1B safetensors total (tied)"),
    ("llama-3.2-3b", 3_212_749_824, None, None, "HF meta-llama/Llama-3.2-3B safetensors total (tied)"),
    # LLaMA-7B's blocks (Amber README: "Total Parameters 6.7B", same shape as Llama-2-7B's published total)
    ("amber-7b", 6_738_415_616, None, None, "LLM360/amber-train README; = HF Llama-2-7b safetensors total"),
    # LLaMA-65B's pyllama total 65,285,660,672 plus 32 more vocab rows in embedding and output: 2 x 32 x 8192
    ("k2-65b", 65_285_660_672 + 2 * 32 * 8192, None, None, "pyllama LLaMA-65B dump + k2-train --vocab-size 32032"),
]


@pytest.mark.parametrize("name,total,emb,nonemb,source", PUBLISHED, ids=[p[0] for p in PUBLISHED])
def test_published_counts(name, total, emb, nonemb, source):
    s = preset_shape(name)
    if total is not None:
        assert s.total_params == total, source
    if emb is not None:
        assert s.embedding_params == emb, source
    if nonemb is not None:
        assert s.non_embedding_params == nonemb, source
    if emb is not None and nonemb is not None:
        assert s.total_params == emb + nonemb


def test_llama_30b_and_70b_llama3():
    # LLaMA-33B ("30B"): 60 layers, 6656, 17920, 52 heads -> 32,528,943,616 (pyllama parameter dump).
    s = ModelShape(n_layers=60, d_model=6656, d_ffn=17920, n_heads=52, vocab_size=32000)
    assert s.total_params == 32_528_943_616
    # Llama-3.3-70B (= Llama-3-70B shape): HF safetensors total 70,553,706,496.
    s = ModelShape(n_layers=80, d_model=8192, d_ffn=28672, n_heads=64, n_kv_heads=8, vocab_size=128256)
    assert s.total_params == 70_553_706_496


def test_llmjp_vocab_padding_by_tp():
    # notes §1c rule 10: 99,487 -> 99,584 at TP 1 or 2; -> 99,840 at TP 4 (the 172B HF config's vocab_size).
    assert pad_vocab(99487, 128, 1) == 99584
    assert pad_vocab(99487, 128, 2) == 99584
    assert pad_vocab(99487, 128, 4) == 99840


def test_llmjp_flops_per_token():
    s = preset_shape("llm-jp-3-1.8b")
    assert s.seq_len == 4096
    # Megatron num_floating_point_operations at GBS 512, s 4096: 2.3466e16 per iteration (notes §1d).
    per_iter = s.flops_per_token_megatron * 512 * 4096
    assert per_iter == pytest.approx(2.3466e16, rel=5e-5)
    assert s.flops_per_token_megatron == pytest.approx(1.11894e10, rel=1e-5)
    # PaLM / torchtitan convention: 1.2398e10 (notes §4); Megatron 9.7% lower.
    assert s.flops_per_token_palm == pytest.approx(1.2398e10, rel=1e-4)
    assert 1 - s.flops_per_token_megatron / s.flops_per_token_palm == pytest.approx(0.097, abs=1e-3)
    # 6N per token 1.12057e10, Megatron / 6N = 0.9985 (notes §1d).
    assert s.flops_per_token_6n == pytest.approx(1.12057e10, rel=1e-5)
    assert s.flops_per_token_megatron / s.flops_per_token_6n == pytest.approx(0.9985, abs=1e-4)


def legacy_megatron_flops_per_iter(s: ModelShape, batch: int) -> float:
    """Megatron <= core_r0.11 (non-causal) formula, notes §1d, written out independently."""
    L, h, seq, a, g = s.n_layers, s.d_model, s.seq_len, s.n_heads, s.n_kv_heads
    q = s.head_dim * a
    return 12 * batch * seq * L * h * h * (
        (1 + g / a + seq / h) * (q / h) + (s.d_ffn / h) * 1.5 + s.padded_vocab / (2 * L * h)
    )


def test_llmjp_legacy_noncausal_flops():
    # notes §1d: legacy non-causal formula gives 2.5999e16 per iteration (GBS 512), +10.8% over HEAD.
    s = preset_shape("llm-jp-3-1.8b")
    legacy = legacy_megatron_flops_per_iter(s, 512)
    assert legacy == pytest.approx(2.5999e16, rel=5e-5)
    # Our causal count + the masked-out half of attention (6 s L q per token) reproduces it.
    full_attn = s.flops_per_token_megatron + 6.0 * s.seq_len * s.n_layers * s.q_dim
    assert full_attn * 512 * 4096 == pytest.approx(legacy, rel=1e-12)


def test_flops_convention_lookup_and_errors():
    s = preset_shape("llama-2-7b")
    assert s.flops_per_token("6n") == s.flops_per_token_6n
    assert s.flops_per_token("palm") == s.flops_per_token_palm
    with pytest.raises(UserError):
        s.flops_per_token("chinchilla")


#: Presets a LlamaConfig can hold (LayerNorm, GELU or partial-rotary shapes are refused: test below).
LLAMA_PRESETS = sorted(n for n in PRESETS if not preset_shape(n).hf_unsupported())


@pytest.mark.parametrize("name", LLAMA_PRESETS)
def test_hf_config_round_trip(name, tmp_path):
    s = preset_shape(name)
    cfg = s.to_hf_config()
    back = ModelShape.from_hf_config(cfg)
    # The HF config carries the padded vocab; counts must be identical.
    assert back.counts()["total_params"] == s.total_params
    assert back.non_embedding_params == s.non_embedding_params
    assert back.padded_vocab == s.padded_vocab
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    assert ModelShape.from_hf_config(path).total_params == s.total_params
    # Without padding the round trip is exact (equal dataclasses).
    plain = s.replace(vocab_size=s.padded_vocab, pad_vocab_to=None)
    assert ModelShape.from_hf_config(plain.to_hf_config()) == plain


def test_hf_config_errors(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        ModelShape.from_hf_config(bad)
    with pytest.raises(UserError, match="not found"):
        ModelShape.from_hf_config(tmp_path / "missing.json")
    with pytest.raises(UserError, match="lacks"):
        ModelShape.from_hf_config({"hidden_size": 64})
    with pytest.raises(UserError, match="SwiGLU"):
        ModelShape.from_hf_config({**preset_shape("llama-2-7b").to_hf_config(), "hidden_act": "gelu"})


@pytest.mark.parametrize("kw,match", [
    (dict(n_layers=2, d_model=100, d_ffn=64, n_heads=3, vocab_size=10), "not divisible"),
    (dict(n_layers=2, d_model=128, d_ffn=64, n_heads=4, n_kv_heads=3, vocab_size=10), "do not divide"),
    (dict(n_layers=-2, d_model=128, d_ffn=64, n_heads=4, vocab_size=10), "positive"),
    (dict(n_layers=2, d_model=128, d_ffn=64, n_heads=4, vocab_size=10, pad_vocab_to=0), "positive"),
])
def test_bad_shapes_raise_user_error(kw, match):
    with pytest.raises(UserError, match=match):
        ModelShape(**kw)


def test_unknown_preset():
    with pytest.raises(UserError, match="known presets"):
        preset_shape("gpt-5")


def test_transformers_meta_device_counts():
    """If transformers is installed, a real LlamaForCausalLM (meta device) has exactly our count.

    Runs in a subprocess so that blocking torchvision there cannot affect other tests.
    """
    shapes = {n: preset_shape(n) for n in ("tinyllama-1.1b", "llama-3.2-1b", "llm-jp-3-1.8b", "llama-2-70b")}
    # LlamaConfig attention_bias (q, k, v, o_proj) and mlp_bias (gate, up, down_proj) = attn_bias, ffn_bias
    small = dict(n_layers=2, d_model=256, d_ffn=512, n_heads=4, n_kv_heads=2, vocab_size=512)
    shapes["attn-bias"] = ModelShape(**small, attn_bias=True)
    shapes["both-biases-tied"] = ModelShape(**small, attn_bias=True, ffn_bias=True, tied=True)
    cfgs = {n: {k: v for k, v in s.to_hf_config().items() if k not in ("architectures", "model_type", "torch_dtype")}
            for n, s in shapes.items()}
    counts, why = meta_param_counts(cfgs)
    if counts is None:
        pytest.skip(why)
    assert counts == {n: s.total_params for n, s in shapes.items()}


# ------------------------------------------------------------------------------------------ properties
@st.composite
def shapes(draw):
    head_dim = draw(st.sampled_from([8, 16, 32, 64, 128]))
    kv = draw(st.integers(1, 8))
    groups = draw(st.integers(1, 4))
    heads = kv * groups
    return ModelShape(
        n_layers=draw(st.integers(1, 64)), d_model=heads * head_dim, d_ffn=draw(st.integers(1, 20000)),
        n_heads=heads, n_kv_heads=kv, vocab_size=draw(st.integers(1, 300_000)),
        seq_len=draw(st.integers(1, 32768)), tied=draw(st.booleans()),
        pad_vocab_to=draw(st.sampled_from([None, 1, 8, 64, 128])), tp=draw(st.sampled_from([1, 2, 4, 8])),
    )


@settings(max_examples=60, deadline=None)
@given(shapes())
def test_count_invariants(s):
    c = s.counts()
    assert c["total_params"] == c["non_embedding_params"] + c["embedding_params"]
    assert c["embedding_params"] == c["input_embedding_params"] + c["output_params"]
    # Tying removes exactly one V_p x d matrix.
    untied, tied = s.replace(tied=False), s.replace(tied=True)
    assert untied.total_params - tied.total_params == s.padded_vocab * s.d_model
    assert untied.non_embedding_params == tied.non_embedding_params
    # head_dim given explicitly as d/H changes nothing; GQA with K = H equals MHA.
    assert s.replace(head_dim=s.d_model // s.n_heads).counts() == c
    assert s.replace(n_kv_heads=s.n_heads).counts() == s.replace(n_kv_heads=None).counts()
    # Megatron theoretical_memory_usage.py parameter formula (notes §1e), RMSNorm (norm = 1).
    h, L, a, g = s.d_model, s.n_layers, s.n_heads, s.n_kv_heads
    kv_ch = s.head_dim
    attn = 2 * h * (kv_ch * a) + 2 * h * kv_ch * g  # = 2·h·h·(1 + g/a)·(q/h)
    mlp = 2 * h * s.d_ffn * 3 // 2
    ln = 2 * h
    emb = h * s.padded_vocab * (1 if s.tied else 2)
    assert L * (attn + mlp + ln) + h + emb == s.total_params
    # Megatron FLOPs = 6 x (matmul weights without norms) + 6 s L q; PaLM adds the other attention half.
    norms = (2 * L + 1) * h
    assert s.flops_per_token_megatron == pytest.approx(
        6 * (s.matmul_params - norms) + 6 * s.seq_len * L * s.q_dim, rel=1e-12)
    assert s.flops_per_token_palm - s.flops_per_token_megatron == pytest.approx(
        6 * norms + 6 * s.seq_len * L * s.q_dim, rel=1e-9)


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 10**6), st.integers(1, 10**6), st.sampled_from([None, 1, 8, 64, 128]),
       st.sampled_from([1, 2, 4, 8, 16]))
def test_vocab_padding_properties(v1, v2, m, tp):
    lo, hi = sorted((v1, v2))
    p_lo, p_hi = pad_vocab(lo, m, tp), pad_vocab(hi, m, tp)
    assert p_lo <= p_hi  # monotone
    assert p_lo >= lo
    if m:
        assert p_lo % (m * tp) == 0 and p_lo - lo < m * tp
    else:
        assert p_lo == lo
    s = ModelShape(n_layers=1, d_model=64, d_ffn=64, n_heads=1, vocab_size=lo, pad_vocab_to=m, tp=tp)
    assert s.embedding_params == 2 * 64 * p_lo


# ------------------------------------------------------------------------------------------ architecture options
GPT2_SMALL = dict(n_layers=12, d_model=768, d_ffn=3072, n_heads=12, vocab_size=50257, tied=True, seq_len=1024,
                  norm="layernorm", activation="gelu", attn_bias=True, ffn_bias=True)


def test_gpt2_small_count_with_biases_and_layernorm():
    """HF ``gpt2``: 124,439,808 parameters (model card / safetensors). GPT-2 has biases on c_attn (QKV),
    attention c_proj, mlp c_fc and c_proj, LayerNorm (gain + bias), tied wte, and a learned position table
    wpe of 1024 x 768 that a RoPE shape does not have."""
    s = ModelShape(**GPT2_SMALL)
    assert s.total_params + 1024 * 768 == 124_439_808
    assert s.attention_bias_params_per_layer == 3 * 768 + 768 and s.mlp_bias_params_per_layer == 3072 + 768
    assert s.replicated_bias_params_per_layer == 2 * 768
    bare = s.replace(attn_bias=False, ffn_bias=False)
    assert s.total_params - bare.total_params == 12 * (4 * 768 + 3072 + 768)


def test_swiglu_ffn_bias_counts_gate_and_up():
    s = preset_shape("llama-2-7b").replace(ffn_bias=True)
    assert s.mlp_bias_params_per_layer == 2 * 11008 + 4096  # gate + up (column) and down (row)
    # biases are additions, not multiply-adds: Megatron's FLOPs count them nowhere
    assert s.flops_per_token_megatron == preset_shape("llama-2-7b").flops_per_token_megatron


@pytest.mark.parametrize("kw,match", [
    (dict(rotary_fraction=0.0), "rotary_fraction"), (dict(rotary_fraction=1.5), "rotary_fraction"),
    (dict(rotary_fraction=0.3), "even whole number"), (dict(attn_bias="yes"), "attn_bias"),
])
def test_bad_architecture_options_raise_user_error(kw, match):
    with pytest.raises(UserError, match=match):
        ModelShape(n_layers=2, d_model=512, d_ffn=1024, n_heads=4, vocab_size=100, **kw)


def test_partial_rotary_counts_dims_and_changes_no_count():
    s = ModelShape(n_layers=2, d_model=512, d_ffn=1024, n_heads=4, vocab_size=100, rotary_fraction=0.25)
    assert s.rotary_dims == 32 and s.total_params == s.replace(rotary_fraction=1.0).total_params


def test_to_dict_keeps_llama_shapes_and_their_plan_hashes_unchanged():
    """The options are written only when set, so every earlier plan file hashes as before."""
    plain = preset_shape("llama-2-7b")
    assert not {"attn_bias", "ffn_bias", "rotary_fraction"} & set(plain.to_dict())
    crystal_like = plain.replace(norm="layernorm", attn_bias=True, ffn_bias=True, rotary_fraction=0.25)
    d = crystal_like.to_dict()
    assert (d["attn_bias"], d["ffn_bias"], d["rotary_fraction"]) == (True, True, 0.25)
    assert ModelShape.from_dict(d) == crystal_like and ModelShape.from_dict(plain.to_dict()) == plain


def test_hf_config_carries_biases_and_refuses_what_llama_cannot_build():
    s = preset_shape("llama-2-7b").replace(attn_bias=True, ffn_bias=True)
    cfg = s.to_hf_config()
    assert (cfg["attention_bias"], cfg["mlp_bias"]) == (True, True)
    assert ModelShape.from_hf_config(cfg) == s
    for kw, why in ((dict(norm="layernorm"), "LayerNorm"), (dict(activation="gelu"), "gated"),
                    (dict(rotary_fraction=0.25), "partial rotary")):
        with pytest.raises(UserError, match=why):
            s.replace(**kw).to_hf_config()
