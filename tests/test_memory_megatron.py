"""Our memory model against Megatron-LM's ``theoretical_memory_usage.py``: where they agree, and where
Megatron's formulas do not apply.

Source of the formulas: NVIDIA/Megatron-LM ``megatron/training/theoretical_memory_usage.py`` at commit
d98e8a64ddf34856e74b24714e3bedb2f5a39553 (2026-08-22): ``compute_weight_and_optimizer_memory``,
``compute_activation_memory``, ``compute_activation_memory_without_sp``, ``report_theoretical_memory``.
"""
import pytest

from planner.parallel.layout import Layout
from planner.parallel.memory import megatron_branch, megatron_theoretical_memory, memory_per_gpu
from planner.shape import preset_shape

LLAMA2_13B = preset_shape("llama-2-13b")  # h 5120, 40 layers, 40 heads (MHA), ffn 13824, vocab 32000, untied
LLAMA3_8B = preset_shape("llama-3-8b")  # h 4096, 32 layers, 32 heads / 8 kv, ffn 14336, vocab 128256


def _state(m):
    return m.weights + m.gradients + m.optimizer


def test_weight_and_optimizer_memory_by_hand_from_the_head_source():
    shape, lay = LLAMA2_13B, Layout(tp=4, pp=2, dp=4, micro_batch=1, grad_accum=8, sequence_parallel=True)
    h, L, ffn, V = 5120, 40, 13824, 32000
    assert shape.padded_vocab == V
    attention = 2 * h * h * ((1 + 40 / 40) * 1.0)  # self_attn_term, kv_channels x heads = h
    mlp = 2 * h * ffn * 3 / 2  # dense_mlp_params with --swiglu
    norms = 2 * h * 1  # layernorm_params, RMSNorm: norm_size 1
    tp_sharded = ((attention + mlp) * L / 2 + h * V) / 4  # (block / PP + embedding) / TP
    replicated = (norms * L + h) / 2  # norms and final norm: not divided by TP (since a7c9e8c)
    bytes_per_param = 6 + 12 / 4  # --use-distributed-optimizer, DP 4
    m = megatron_theoretical_memory(shape, lay)
    assert m.details["tp_sharded_params"] == pytest.approx(tp_sharded, rel=1e-12)
    assert m.details["replicated_params"] == pytest.approx(replicated, rel=1e-12)
    assert _state(m) == pytest.approx((tp_sharded + replicated) * bytes_per_param, rel=1e-12)
    # PP > 1: the untied output layer sits on the last stage, which Megatron does not count
    assert megatron_theoretical_memory(shape, lay.replace(pp=1)).details["tp_sharded_params"] == pytest.approx(
        ((attention + mlp) * L + 2 * h * V) / 4, rel=1e-12)


@pytest.mark.parametrize("tp,zero,tied", [(1, 1, False), (2, 1, False), (8, 1, False), (8, 0, False),
                                           (4, 1, True)])
def test_weights_gradients_optimizer_agree_exactly_without_pipeline(tp, zero, tied):
    shape = LLAMA2_13B.replace(tied=tied)
    lay = Layout(tp=tp, dp=8, micro_batch=1, grad_accum=4, sequence_parallel=tp > 1, zero_stage=zero)
    ours, meg = memory_per_gpu(shape, lay), megatron_theoretical_memory(shape, lay)
    assert ours.params_per_gpu == pytest.approx(meg.params_per_gpu, rel=1e-12)
    assert (ours.weights, ours.gradients, ours.optimizer) == pytest.approx((meg.weights, meg.gradients,
                                                                           meg.optimizer), rel=1e-12)
    assert meg.details["bytes_per_param"] == (18 if zero == 0 else 6 + 12 / 8)


def test_pipeline_first_stage_differs_by_megatrons_share_of_the_final_norm():
    # Megatron spreads the final norm over the stages (replicated_params / PP); ours keeps it on the last
    for pp in (2, 4):
        lay = Layout(tp=4, pp=pp, dp=4, micro_batch=1, grad_accum=8, sequence_parallel=True)
        ours, meg = memory_per_gpu(LLAMA2_13B, lay), megatron_theoretical_memory(LLAMA2_13B, lay)
        assert ours.stage == "first"
        assert meg.params_per_gpu - ours.params_per_gpu == pytest.approx(5120 / pp)


@pytest.mark.parametrize("name", ["llama-2-7b", "llama-2-13b", "llama-3-8b", "llama-65b"])
def test_activations_agree_within_15_percent_with_sp_and_selective_recompute(name):
    # Both count Korthikanti et al. Table 2's "TP + SP + selective" form. Ours is larger because
    # Megatron's per-layer 18 + 4·ffn/h is GPT's (two ffn-wide tensors with GeLU; SwiGLU keeps three:
    # gate, up and their product) and its loss term keeps 4 bytes of logits where ours keeps the fp32
    # softmax and the bf16 logits; GQA's smaller K, V (Llama-3) pull ours back towards Megatron's.
    shape = preset_shape(name)
    for tp in (2, 4, 8):
        for pp in (1, 2, 4):
            lay = Layout(tp=tp, pp=pp, dp=4, micro_batch=1, grad_accum=8, sequence_parallel=True,
                         recompute="selective")
            assert megatron_branch(shape, lay) == "compute_activation_memory"
            ours, meg = memory_per_gpu(shape, lay), megatron_theoretical_memory(shape, lay)
            assert 1.0 < ours.activations / meg.activations < 1.15, (tp, pp)


def test_without_sp_megatron_adds_five_percent_and_gpt_dropout_masks():
    # TP > 1 without SP takes compute_activation_memory_without_sp: s·b·h·(10 + 24/TP) per layer (GPT's
    # 10 includes two dropout masks a Llama with dropout 0 never stores) and x1.05 on everything
    lay = Layout(tp=8, dp=4, micro_batch=1, grad_accum=8, sequence_parallel=False, recompute="selective")
    assert megatron_branch(LLAMA2_13B, lay) == "compute_activation_memory_without_sp"
    s, b, h, L, V = 4096, 1, 5120, 40, 32000
    bare = s * b * h * (10 + 24 / 8) * L + 8 * s * b + s * b * h + (s * b * V / 8 + s * b * h) * 2
    meg = megatron_theoretical_memory(LLAMA2_13B, lay)
    assert meg.activations == pytest.approx(1.05 * bare, rel=1e-12)
    ours = memory_per_gpu(LLAMA2_13B, lay)
    assert ours.activations < 0.85 * meg.activations  # outside the SP + selective agreement band


def test_megatron_models_sp_only_together_with_selective_recompute():
    # report_theoretical_memory picks the SP formula only for "--sequence-parallel and selective";
    # SP with recompute none (flash attention makes it cost the same as selective) falls back to the
    # no-SP formula, and full recompute is not modelled at all
    base = Layout(tp=4, dp=4, micro_batch=1, grad_accum=8, sequence_parallel=True)
    meg = {rc: megatron_theoretical_memory(LLAMA2_13B, base.replace(recompute=rc)).activations
           for rc in ("none", "selective", "full")}
    ours = {rc: memory_per_gpu(LLAMA2_13B, base.replace(recompute=rc)).activations
            for rc in ("none", "selective", "full")}
    assert meg["full"] == meg["none"] > 2 * meg["selective"]
    assert ours["none"] == ours["selective"]  # flash attention stores no scores either way
    assert ours["full"] < 0.2 * ours["selective"]  # layer inputs only, plus one layer being recomputed


def test_megatron_ignores_gqa_context_parallelism_and_kernels_in_activations():
    lay = Layout(tp=2, dp=4, micro_batch=1, grad_accum=8, sequence_parallel=True, recompute="selective")
    mha = LLAMA3_8B.replace(n_kv_heads=32)
    # GQA: K and V are 4x smaller with 8 kv heads; Megatron's activations do not change (its TODO),
    # its parameters do
    assert megatron_theoretical_memory(LLAMA3_8B, lay).activations == megatron_theoretical_memory(mha, lay).activations
    assert _state(megatron_theoretical_memory(LLAMA3_8B, lay)) < _state(megatron_theoretical_memory(mha, lay))
    assert memory_per_gpu(LLAMA3_8B, lay).activations < memory_per_gpu(mha, lay).activations
    # context parallelism: Megatron uses the full --seq-length; our ranks hold seq/CP
    cp2 = lay.replace(cp=2, dp=2)
    assert megatron_theoretical_memory(LLAMA3_8B, cp2).activations == megatron_theoretical_memory(LLAMA3_8B,
                                                                                                 lay).activations
    assert memory_per_gpu(LLAMA3_8B, cp2).activations < 0.6 * memory_per_gpu(LLAMA3_8B, lay).activations
    # eager (unfused) kernels: Megatron always assumes its own fused ones
    fused, eager = (memory_per_gpu(LLAMA3_8B, lay, kernels=k).activations for k in ("fused", "eager"))
    assert eager > 1.3 * fused


def test_fsdp_has_no_megatron_formula():
    # Megatron prints 6 + 12/DP bytes per parameter for any sharded run; FSDP2 keeps 16 bytes per
    # parameter *sharded* (fp32 params = master, fp32 grads, Adam m, v) plus the gathered bf16 layers
    shape = preset_shape("llama-2-7b")
    lay = Layout(dp=64, micro_batch=2, grad_accum=4, recompute="selective", fsdp=True)
    meg, ours = megatron_theoretical_memory(shape, lay), memory_per_gpu(shape, lay)
    assert meg.details["bytes_per_param"] == 6 + 12 / 64
    assert meg.weights == pytest.approx(2 * meg.params_per_gpu)  # every bf16 weight on every rank
    assert ours.weights < 0.1 * meg.weights  # only the layers being gathered (two at a time)
    assert _state(ours) < 0.2 * _state(meg)
