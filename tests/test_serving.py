"""The serving constraint (planner.serving), checked against published model sizes and hand arithmetic.

Outside facts used here:

* Llama-2-7B: 32 layers, 32 heads (= kv heads), head_dim 128, 6,738,415,616 parameters (Meta's
  meta-llama/Llama-2-7b-hf config.json; the model card's "7B"); bf16 weights are 2 bytes each.
* Llama-2-70B: 80 layers, 64 heads, 8 kv heads (GQA), 68,976,648,192 parameters (same source).
* Llama-3-8B: 32 layers, 8 kv heads, head_dim 128 (meta-llama/Meta-Llama-3-8B config.json).
* KV cache per token = 2 (K and V) x layers x kv_heads x head_dim x bytes (Kwon et al. 2023, Sec. 3).
* LLM360 (Amber / K2 reports, as issue 13 item 8 quotes them): a 7B model serves on a single A100.

Shapes found by the search are checked through facts computed from the returned shape, never through
hard-coded layer counts (the search's ranking may change).
"""
from __future__ import annotations

import numpy as np
import pytest

from planner.errors import UserError
from planner.hardware import GB, GIB, get_gpu
from planner.scaling_law import ScalingLaw
from planner.serving import (DEFAULT_BATCH, DEFAULT_CONTEXT, DEFAULT_GPU_MEMORY_UTILIZATION, ServingTarget,
                             default_shape_for, max_serving_params, parse_serve_on, serving_cost, serving_memory)
from planner.shape import preset_shape
from planner.shape_search import search_shapes

LLAMA2_7B_PARAMS = 6_738_415_616
LLAMA2_70B_PARAMS = 68_976_648_192
# Hoffmann et al. 2022 (arXiv:2203.15556), Approach 3: E, A, B, alpha, beta (as planner.laws' preset).
CHINCHILLA = ScalingLaw(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28, name="hoffmann2022")


# ------------------------------------------------------------------ parse_serve_on
@pytest.mark.parametrize("text, gpu, weights, kv, wbytes, kvbytes", [
    ("A100", "A100-80GB", "bf16", "bf16", 2, 2),
    ("H100,bf16", "H100-SXM", "bf16", "bf16", 2, 2),
    ("A100-80GB,int8", "A100-80GB", "int8", "bf16", 1, 2),
    ("L40S,fp8", "L40S", "fp8", "bf16", 1, 2),
    ("H100,fp8,kv=fp8", "H100-SXM", "fp8", "fp8", 1, 1),
    ("a100-40gb, int4", "A100-40GB", "int4", "bf16", 0.5, 2),
    ("h100, kv=float16, bfloat16", "H100-SXM", "bf16", "fp16", 2, 2),
])
def test_parse_serve_on(text, gpu, weights, kv, wbytes, kvbytes):
    t = parse_serve_on(text)
    assert (t.gpu.name, t.weight_dtype, t.kv_dtype, t.weight_bytes, t.kv_bytes) == (gpu, weights, kv, wbytes, kvbytes)
    assert t.embedding_bytes == max(wbytes, 2)  # quantised blocks keep a 16-bit embedding and head
    assert parse_serve_on(t.label) == t and parse_serve_on(t) is t
    assert t.to_dict()["memory_bytes"] == get_gpu(gpu).memory_bytes


@pytest.mark.parametrize("text, hint", [
    ("", "needs a GPU"), ("   ", "needs a GPU"), (None, "needs a GPU"),
    ("Z80", "known GPUs"), ("H100,bf17", "use one of"), ("H100,kv=", "cannot read"),
    ("H100,bf16,int4", "given twice"), ("H100,kv=fp8,kv=bf16", "given twice"), ("H100,foo=bar", "cannot read"),
    ("H100,,bf16", "cannot read"), ("H100,kv=int3", "use one of"),
])
def test_parse_serve_on_rejects_bad_text(text, hint):
    with pytest.raises(UserError, match=hint):
        parse_serve_on(text)


def test_serving_target_checks_its_dtypes():
    with pytest.raises(UserError, match="use one of"):
        ServingTarget(gpu=get_gpu("H100"), weight_dtype="int3")


# ------------------------------------------------------------------ serving_memory
def test_kv_cache_of_published_models_by_hand():
    # Llama-2-7B, MHA, fp16/bf16 cache, 4096 tokens: 2 x 32 x 32 x 128 x 4096 x 2 bytes = 2 GiB.
    by_hand_7b = 2 * 32 * 32 * 128 * 4096 * 2
    assert by_hand_7b == 2 * GIB
    m = serving_memory(preset_shape("llama-2-7b"), "A100", context=4096, batch=1)
    assert m.kv_cache_bytes == by_hand_7b
    # Llama-3-8B, GQA with 8 kv heads: a quarter of that, 0.5 GiB.
    by_hand_8b = 2 * 32 * 8 * 128 * 4096 * 2
    assert by_hand_8b == GIB // 2
    assert serving_memory(preset_shape("llama-3-8b"), "A100", context=4096).kv_cache_bytes == by_hand_8b
    # An 8-bit cache halves it; batch and context scale it linearly.
    assert serving_memory(preset_shape("llama-3-8b"), "A100,kv=fp8").kv_cache_bytes == by_hand_8b / 2
    assert serving_memory(preset_shape("llama-3-8b"), "A100", context=8192, batch=4).kv_cache_bytes == 8 * by_hand_8b


def test_defaults_are_4096_tokens_batch_1_and_vllm_utilization():
    m = serving_memory(preset_shape("llama-2-7b"), "A100")
    assert (m.context, m.batch) == (DEFAULT_CONTEXT, DEFAULT_BATCH) == (4096, 1)
    assert DEFAULT_GPU_MEMORY_UTILIZATION == 0.9
    assert m.overhead_bytes == pytest.approx(0.1 * get_gpu("A100").memory_bytes)
    assert serving_memory(preset_shape("llama-2-7b"), "A100", utilization=1.0).overhead_bytes == 0


def test_llama2_7b_bf16_fits_one_a100():
    shape = preset_shape("llama-2-7b")
    assert shape.total_params == LLAMA2_7B_PARAMS
    for gpu in ("A100-80GB", "A100-40GB"):
        m = serving_memory(shape, gpu)
        assert m.weights_bytes == LLAMA2_7B_PARAMS * 2 == pytest.approx(13.5 * GB, rel=0.01)
        assert m.total_bytes == pytest.approx(m.weights_bytes + m.kv_cache_bytes + m.overhead_bytes)
        assert m.capacity_bytes == get_gpu(gpu).memory_bytes
        assert m.fits and m.total_bytes <= m.capacity_bytes and m.headroom_bytes > 0
        assert m.to_dict()["fits"] is True


def test_llama2_70b_needs_int4_on_one_h100():
    shape = preset_shape("llama-2-70b")
    assert shape.total_params == LLAMA2_70B_PARAMS
    bf16 = serving_memory(shape, "H100-80GB,bf16")
    assert bf16.weights_bytes == pytest.approx(138 * GB, rel=0.01)
    assert not bf16.fits and bf16.headroom_bytes < 0
    int4 = serving_memory(shape, "H100-80GB,int4")
    by_hand = shape.non_embedding_params * 0.5 + 2 * 32000 * 8192 * 2  # blocks 4-bit; embedding and head 16-bit
    assert int4.weights_bytes == by_hand == pytest.approx(35 * GB, rel=0.02)
    assert int4.kv_cache_bytes == 2 * 80 * 8 * 128 * 4096 * 2
    assert int4.fits


@pytest.mark.parametrize("kw, hint", [
    (dict(context=0), "context"), (dict(batch=-1), "batch"), (dict(batch=1.5), "batch"),
    (dict(utilization=1.5), "fraction"), (dict(utilization=0), "utilization"),
])
def test_serving_memory_rejects_bad_inputs(kw, hint):
    with pytest.raises(UserError, match=hint):
        serving_memory(preset_shape("llama-2-7b"), "A100", **kw)


# ------------------------------------------------------------------ max_serving_params
@pytest.mark.parametrize("gpu", ["A100-40GB", "A100-80GB"])
def test_llm360_seven_billion_on_a_single_a100(gpu):
    """LLM360's rule of thumb holds at the defaults (4096 tokens, one sequence, bf16)."""
    lim = max_serving_params(gpu)
    assert lim.n_max >= LLAMA2_7B_PARAMS
    assert lim.n_max == lim.shape.total_params and lim.memory.fits
    assert lim.memory == serving_memory(lim.shape, gpu)
    if gpu == "A100-80GB":  # but a 70B model needs more than one A100 in bf16
        assert lim.n_max < 70e9


@pytest.mark.parametrize("text, context, batch", [
    ("A100", 4096, 1), ("H100,int4", 4096, 1), ("L40S,fp8,kv=fp8", 8192, 4), ("H200", 32768, 2),
])
def test_max_serving_params_is_at_the_boundary(text, context, batch):
    target = parse_serve_on(text)
    lim = max_serving_params(target, context=context, batch=batch)
    assert lim.memory.fits and lim.memory.context == context and lim.memory.batch == batch
    # Physics: the weights alone cannot exceed the usable memory.
    usable = DEFAULT_GPU_MEMORY_UTILIZATION * target.gpu.memory_bytes
    assert lim.n_max * target.weight_bytes <= usable
    # It fills the GPU (the bisection stops within 0.1 % of the boundary), and a searched model 20 %
    # larger does not fit (20 %, not 0.1 %: shapes of nearby sizes may differ in depth, so in KV cache).
    assert lim.memory.total_bytes >= 0.9 * lim.memory.capacity_bytes
    bigger = default_shape_for(32000, context)(1.2 * lim.n_max)
    assert not serving_memory(bigger, target, context=context, batch=batch).fits


def test_shape_matters_gqa_serves_a_larger_model_at_long_context():
    def gqa(n):
        return search_shapes(n, vocab_size=32000, gqa_ratio=8, seq_len=32768, top=1)[0].shape

    def full_mha(n):
        return search_shapes(n, vocab_size=32000, gqa_ratio=1, seq_len=32768, top=1)[0].shape

    mha = max_serving_params("H100", context=32768, batch=8, shape_for=full_mha)
    grouped = max_serving_params("H100", context=32768, batch=8, shape_for=gqa)
    assert mha.shape.n_kv_heads == mha.shape.n_heads
    assert grouped.shape.n_kv_heads * 8 == grouped.shape.n_heads
    assert grouped.n_max > 2 * mha.n_max
    assert max_serving_params("H100,kv=fp8", context=32768, batch=8, shape_for=full_mha).n_max > mha.n_max


def test_nothing_fits_says_what_to_do():
    with pytest.raises(UserError, match="no model fits.*shorten the context"):
        max_serving_params("L40S", context=1_000_000, batch=64)


# ------------------------------------------------------------------ serving_cost
def test_no_penalty_when_the_cap_does_not_bind():
    C = 5.76e23  # Chinchilla's training budget (Hoffmann et al. 2022, Table 1 / Sec. 3)
    opt = CHINCHILLA.optimal(C, interval=None)
    for cap in (opt.N, 2 * opt.N, 1e13):
        cost = serving_cost(CHINCHILLA, C, cap)
        assert not cost.binding and cost.penalty_nats == 0 and cost.penalty_pct == 0
        assert (cost.n, cost.d, cost.loss) == (opt.N, opt.D, opt.loss)


def test_penalty_grows_as_the_cap_shrinks():
    C = 5.76e23
    n_star = CHINCHILLA.optimal(C, interval=None).N
    costs = [serving_cost(CHINCHILLA, C, f * n_star) for f in (0.9, 0.5, 0.2, 0.05)]
    penalties = [c.penalty_nats for c in costs]
    assert all(p > 0 for p in penalties) and penalties == sorted(penalties)
    for c in costs:
        assert c.binding and c.n == c.n_max and c.d == pytest.approx(C / (6 * c.n))
        assert c.loss == pytest.approx(CHINCHILLA.predict(c.n, c.d))
        assert c.penalty_pct == pytest.approx(100 * c.penalty_nats / c.loss_opt)
        # The cap itself is the best allowed N: no smaller N on the budget does better.
        grid = np.geomspace(c.n_max / 100, c.n_max, 400)
        assert c.loss <= CHINCHILLA.predict(grid, C / (6 * grid)).min() + 1e-12


def test_serving_cost_with_a_served_limit():
    lim = max_serving_params("A100-40GB")
    cost = serving_cost(CHINCHILLA, 5.76e23, lim.n_max)
    assert cost.binding and cost.n == lim.n_max and cost.penalty_nats > 0
    assert cost.to_dict()["law"] == "hoffmann2022"


@pytest.mark.parametrize("flops, cap", [(0, 1e9), (1e23, -1), (float("nan"), 1e9)])
def test_serving_cost_rejects_bad_inputs(flops, cap):
    with pytest.raises(UserError):
        serving_cost(CHINCHILLA, flops, cap)
