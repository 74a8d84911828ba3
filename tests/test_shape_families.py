"""The published-shape table against its sources, and which family rule each published shape keeps.

Every number below is a published config value, paper table entry or model-card count (named next
to it); none was produced by this code.
"""
from __future__ import annotations

import pytest

from planner.shape_families import (ASPECT_BAND, ASPECT_CENTER, FAMILY_RULES, PUBLISHED, Policy, family_rules,
                                    published_shape)
from planner.shape_search import HARD_RULES, score_shape

# (name, layers, d_model, d_ffn, heads, kv heads, vocab, tied) as in the named config.json / table.
CONFIGS = [
    ("llama-3-70b", 80, 8192, 28672, 64, 8, 128256, False),  # HF meta-llama/Meta-Llama-3-70B
    ("llama-3.1-405b", 126, 16384, 53248, 128, 8, 128256, False),  # HF meta-llama/Llama-3.1-405B
    ("qwen2.5-0.5b", 24, 896, 4864, 14, 2, 151936, True),  # HF Qwen/Qwen2.5-0.5B
    ("qwen2.5-7b", 28, 3584, 18944, 28, 4, 152064, False),  # HF Qwen/Qwen2.5-7B
    ("qwen2.5-14b", 48, 5120, 13824, 40, 8, 152064, False),  # HF Qwen/Qwen2.5-14B
    ("qwen2.5-32b", 64, 5120, 27648, 40, 8, 152064, False),  # HF Qwen/Qwen2.5-32B
    ("qwen3-8b", 36, 4096, 12288, 32, 8, 151936, False),  # HF Qwen/Qwen3-8B
    ("olmo-7b", 32, 4096, 11008, 32, 32, 50304, False),  # OLMo-7B.yaml: mlp_hidden_size 22016, embedding_size 50304
    ("olmo-2-13b", 40, 5120, 13824, 40, 40, 100352, False),  # HF allenai/OLMo-2-1124-13B
    ("gpt-3-175b", 96, 12288, 4 * 12288, 96, 96, 50257, True),  # Brown et al. 2020, Table 2.1
]


@pytest.mark.parametrize("row", CONFIGS, ids=[r[0] for r in CONFIGS])
def test_table_matches_configs(row):
    name, L, d, f, a, kv, vocab, tied = row
    s = published_shape(name)
    assert (s.n_layers, s.d_model, s.d_ffn, s.n_heads, s.n_kv_heads, s.vocab_size, s.tied) == (L, d, f, a, kv, vocab,
                                                                                                  tied)
    assert PUBLISHED[name]


@pytest.mark.parametrize("name,total,non_emb", [
    ("qwen2.5-7b", 7.61e9, 6.53e9),  # Qwen2.5-7B model card: 7.61B, 6.53B non-embedding
    ("qwen2.5-14b", 14.7e9, None),  # Qwen2.5-14B model card: 14.7B
    ("qwen3-8b", 8.2e9, 6.95e9),  # Qwen3-8B model card: 8.2B, 6.95B non-embedding
    ("qwen3-14b", 14.8e9, 13.2e9),  # Qwen3-14B model card: 14.8B, 13.2B non-embedding
    ("llama-3.1-405b", 405e9, None),  # Llama 3 paper: 405B
])
def test_table_counts_match_model_cards(name, total, non_emb):
    # Cards round to 3 significant figures; Qwen2.5's q/k/v biases and Qwen3's QK-norm are not counted.
    s = published_shape(name)
    assert s.total_params == pytest.approx(total, rel=5e-3)
    if non_emb:
        assert s.non_embedding_params == pytest.approx(non_emb, rel=5e-3)


def test_aspect_band_is_the_published_span():
    # Narrowest: Qwen2.5-0.5B 896 / 24 = 37.3; widest: Llama-3.1-405B 16384 / 126 = 130.0 (configs above).
    assert ASPECT_BAND == (37.0, 131.0)
    # The preferred aspect lies between Llama-2-70B's 8192 / 80 and Llama-2-7B's 4096 / 32.
    assert 8192 / 80 <= ASPECT_CENTER <= 4096 / 32


# Published shapes that break a family rule, with the facts that break it (from their configs);
# every other row of the table keeps every hard rule.
BREAKS = {
    "qwen2.5-0.5b": {"heads_regular",  # 14 heads
                     "ffn_ratio_in_band",  # 4864 / 896 = 5.43
                     "kv_heads_policy"},  # 2 kv heads of 14
    "qwen2.5-1.5b": {"heads_regular", "ffn_ratio_in_band", "kv_heads_policy"},  # 12 heads, 5.83, 2 kv
    "qwen2.5-3b": {"ffn_ratio_in_band", "kv_heads_policy"},  # 11008 / 2048 = 5.375, 2 kv heads
    "qwen2.5-7b": {"heads_regular", "ffn_ratio_in_band", "kv_heads_policy"},  # 28 heads, 5.29, 4 kv
    "qwen2.5-32b": {"ffn_ratio_in_band"},  # 27648 / 5120 = 5.4
    "qwen2.5-72b": {"ffn_multiple_256"},  # 29568 = 115.5 x 256
    "llama-3.1-405b": {"layers_pipeline"},  # 126 layers (Llama 3 paper §3.3.2: 2 removed to balance 16 stages)
    "llama-33b": {"heads_regular", "layers_pipeline", "kv_heads_policy"},  # 52 heads, 60 layers, MHA
    "llama-65b": {"kv_heads_policy"},  # MHA at d 8192
    "llama-2-7b": {"kv_heads_policy"}, "llama-2-13b": {"kv_heads_policy"},  # MHA (GQA from 34B: Llama 2 §2.2)
    "olmo-7b": {"kv_heads_policy"}, "olmo-2-7b": {"kv_heads_policy"}, "olmo-2-13b": {"kv_heads_policy"},  # MHA
    "llm-jp-3-13b": {"kv_heads_policy"},  # MHA at d 5120
    "tinyllama-1.1b": {"kv_heads_policy"},  # 4 kv heads of 32
    "gpt-3-760m": {"head_dim_family"},  # head dim 96
    "gpt-3-2.7b": {"head_dim_family"},  # head dim 80
    "gpt-3-6.7b": {"kv_heads_policy"},  # MHA
    "gpt-3-13b": {"d_model_multiple", "ffn_multiple_256", "kv_heads_policy"},  # d_model 5140, d_ff 20560
    "gpt-3-175b": {"kv_heads_policy"},  # MHA
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_which_published_shapes_keep_which_rules(name):
    s = published_shape(name)
    c = score_shape(s)
    broken = {r for r in FAMILY_RULES if not c.rules[r]}
    assert broken == BREAKS.get(name, set()), (name, broken)
    assert all(c.rules[r] for r in HARD_RULES if r not in FAMILY_RULES)  # Megatron at TP 1, aspect band


def test_told_otherwise_mha_keeps_the_kv_rule():
    # Llama-2-7B is MHA: with gqa_ratio=1 ("told otherwise") it keeps every rule.
    c = score_shape(published_shape("llama-2-7b"), gqa_ratio=1)
    assert all(c.rules[r] for r in HARD_RULES)
    c = score_shape(published_shape("tinyllama-1.1b"), kv_heads=4)
    assert all(c.rules[r] for r in HARD_RULES)


def test_rule_thresholds_on_non_embedding_count():
    # Head dim 64 at d 2048: Llama-3.2-1B (0.97B non-embedding) may, the same shape at 1.5B may not.
    r = family_rules([16], [2048], [32], [8], [64], [8192], [0.97e9], Policy())
    assert r["head_dim_family"][0]
    r = family_rules([16], [2048], [32], [8], [64], [8192], [1.5e9], Policy())
    assert not r["head_dim_family"][0]
    # 60 layers: allowed at 20B (a multiple of 4), not at 32B (LLaMA-33B's depth; 8 needed from 30B).
    assert family_rules([60], [6144], [48], [8], [128], [16384], [2e10], Policy())["layers_pipeline"][0]
    assert not family_rules([60], [6144], [48], [8], [128], [16384], [3.2e10], Policy())["layers_pipeline"][0]
