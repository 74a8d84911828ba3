"""search_shapes: candidates are valid, their claims are true, published shapes are recovered."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.errors import UserError
from planner.shape import preset_shape
from planner.shape_search import HARD_RULES, RULE_PENALTY, ShapeCandidate, search_shapes


def _is_pow2(x: int) -> bool:
    return x > 0 and x & (x - 1) == 0


def check_candidate(c: ShapeCandidate, *, target, non_embedding, tp, head_dims, gqa_ratio, aspect, vocab,
                    micro_batch=1, max_rel_error=0.25):
    """Recompute every claim of a candidate from its ModelShape, independently of the search."""
    s = c.shape
    matched = s.non_embedding_params if non_embedding else s.total_params
    assert c.params == matched
    assert c.rel_error == pytest.approx(matched / target - 1, rel=1e-9, abs=1e-12)
    assert abs(c.rel_error) <= max_rel_error + 1e-12
    assert s.head_dim in head_dims and s.d_model == s.n_heads * s.head_dim
    assert s.n_kv_heads * gqa_ratio == s.n_heads
    assert s.vocab_size == vocab and s.tp == tp
    assert aspect[0] <= s.d_model / s.n_layers <= aspect[1]
    truth = {
        "megatron_heads_div_tp": s.n_heads % tp == 0,
        "megatron_kv_heads_tp": s.n_kv_heads % tp == 0 or tp % s.n_kv_heads == 0,
        "megatron_ffn_div_tp": s.d_ffn % tp == 0,
        "aspect_in_range": True,
        "vocab_div_64": s.padded_vocab % 64 == 0,
        "head_dim_pow2": _is_pow2(s.head_dim),
        "hidden_per_tp_pow2": _is_pow2(s.d_model // tp) or (s.d_model // tp) % 64 == 0,
        "ba_over_t_integer": (micro_batch * s.n_heads) % tp == 0,
        "tp_within_node": tp <= 8,
        "d_model_mult_64": s.d_model % 64 == 0,
        "d_ffn_mult_64": s.d_ffn % 64 == 0,
        "depth_at_least_2": s.n_layers >= 2,
    }
    assert c.rules == truth
    for rule in HARD_RULES:  # never returned broken
        assert c.rules[rule]
    assert isinstance(c.why, str) and "\n" not in c.why and c.why
    d = c.to_dict()
    assert d["total_params"] == s.total_params and d["n_layers"] == s.n_layers and d["rules"] == c.rules


def test_llmjp_like_target_close_and_valid():
    target = 1.8e9
    cands = search_shapes(target, vocab_size=99487, tp=1, head_dim=128, top=10)
    assert 1 <= len(cands) <= 10
    assert abs(cands[0].params / target - 1) < 0.03
    assert [c.score for c in cands] == sorted(c.score for c in cands)
    for c in cands:
        check_candidate(c, target=target, non_embedding=False, tp=1, head_dims=[128], gqa_ratio=1,
                        aspect=(32, 256), vocab=99487)
        assert c.shape.padded_vocab == 99584  # Megatron padding of the llm-jp tokenizer (notes §1c)


def test_recovers_published_shapes_from_their_counts():
    # Asked for Llama-2-7B's exact count under Llama's own ffn rule (ceil(8d/3 / 256) * 256),
    # the search finds Llama-2-7B itself first.
    ref = preset_shape("llama-2-7b")
    best = search_shapes(ref.total_params, vocab_size=32000, pad_vocab_to=None, ffn_rule="swiglu8/3")[0]
    assert (best.shape.n_layers, best.shape.d_model, best.shape.d_ffn, best.shape.n_heads) == (32, 4096, 11008, 32)
    assert best.rel_error == 0.0
    # llm-jp-3-1.8b's exact count with free multiple-of-256 d_ffn: llm-jp's own shape is among the top 3.
    ref = preset_shape("llm-jp-3-1.8b")
    cands = search_shapes(ref.total_params, vocab_size=99487, top=3)
    assert any((c.shape.n_layers, c.shape.d_model, c.shape.d_ffn) == (24, 2048, 7168) for c in cands)


def test_tp8_gqa_candidates_are_megatron_valid():
    target = 70e9
    cands = search_shapes(target, vocab_size=128256, tp=8, gqa_ratio=8, head_dim=[64, 128], top=20)
    assert cands
    for c in cands:
        assert c.shape.n_heads % 8 == 0
        assert c.shape.padded_vocab % (128 * 8) == 0
        check_candidate(c, target=target, non_embedding=False, tp=8, head_dims=[64, 128], gqa_ratio=8,
                        aspect=(32, 256), vocab=128256)
    assert abs(cands[0].rel_error) < 0.01


def test_swiglu_ffn_rule():
    cands = search_shapes(7e9, ffn_rule="swiglu8/3", top=10)
    for c in cands:
        d = c.shape.d_model
        m = min(256, max(8, 2 ** int(math.floor(math.log2(d / 4)))))
        assert c.shape.d_ffn == math.ceil(8 * d / 3 / m) * m


def test_tiny_proxy_targets():
    for target in (1e5, 1e6):
        cands = search_shapes(target, non_embedding=True, vocab_size=4096, head_dim=16, top=5)
        assert cands
        for c in cands:
            check_candidate(c, target=target, non_embedding=True, tp=1, head_dims=[16], gqa_ratio=1,
                            aspect=(32, 256), vocab=4096)
        assert abs(cands[0].rel_error) < 0.02
    # A ladder-style proxy around d_model 32..512 with head_dim 32.
    cands = search_shapes(3e6, non_embedding=True, vocab_size=4096, head_dim=32, aspect=(16, 256), top=5)
    assert all(32 <= c.shape.d_model <= 512 for c in cands)


def test_tied_and_non_embedding_modes():
    t = search_shapes(1e9, vocab_size=128256, tied=True, gqa_ratio=4, top=3)
    for c in t:
        assert c.shape.tied and c.shape.embedding_params == c.shape.padded_vocab * c.shape.d_model
        check_candidate(c, target=1e9, non_embedding=False, tp=1, head_dims=[128], gqa_ratio=4,
                        aspect=(32, 256), vocab=128256)
    ne = search_shapes(1e9, non_embedding=True, top=3)
    assert all(c.params == c.shape.non_embedding_params for c in ne)


def test_extreme_target_1e12():
    cands = search_shapes(1e12, vocab_size=128256, tp=8, gqa_ratio=8, top=5)
    assert abs(cands[0].rel_error) < 0.01
    for c in cands:
        check_candidate(c, target=1e12, non_embedding=False, tp=8, head_dims=[128], gqa_ratio=8,
                        aspect=(32, 256), vocab=128256)


def test_target_below_embedding_raises_with_advice():
    with pytest.raises(UserError, match="--non-embedding"):
        search_shapes(1e6, vocab_size=32000)


@pytest.mark.parametrize("kw", [
    dict(target_params=-5),
    dict(target_params=float("nan")),
    dict(target_params=1e9, ffn_rule="gelu4"),
    dict(target_params=1e9, tp=0),
    dict(target_params=1e9, head_dim=0),
    dict(target_params=1e9, aspect=(100, 10)),
    dict(target_params=1e9, gqa_ratio=3, tp=1, head_dim=128, aspect=(1000, 1001)),
])
def test_bad_or_impossible_input_raises_user_error(kw):
    with pytest.raises(UserError):
        search_shapes(**kw)


def test_rule_penalties_are_reflected_in_score():
    # Same closeness, but breaking a soft rule costs its penalty: score >= 100 |err| + penalties - bonus.
    for c in search_shapes(1e6, non_embedding=True, vocab_size=4096, head_dim=16, top=10):
        broken = sum(p for r, p in RULE_PENALTY.items() if not c.rules[r])
        assert c.score >= 100 * abs(c.rel_error) + broken - 0.5 - 1e-9


@settings(max_examples=25, deadline=None)
@given(
    log_target=st.floats(5.0, 12.0),
    non_embedding=st.booleans(),
    tp=st.sampled_from([1, 2, 4, 8]),
    head_dim=st.sampled_from([16, 32, 64, 128]),
    gqa=st.sampled_from([1, 2, 4, 8]),
    vocab=st.sampled_from([4096, 32000, 99487, 128256]),
)
def test_any_input_gives_valid_candidates_or_user_error(log_target, non_embedding, tp, head_dim, gqa, vocab):
    target = 10.0 ** log_target
    try:
        cands = search_shapes(target, non_embedding=non_embedding, tp=tp, head_dim=head_dim, gqa_ratio=gqa,
                              vocab_size=vocab, top=5)
    except UserError:
        return
    assert cands
    for c in cands:
        check_candidate(c, target=target, non_embedding=non_embedding, tp=tp, head_dims=[head_dim],
                        gqa_ratio=gqa, aspect=(32, 256), vocab=vocab)
