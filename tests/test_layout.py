"""Layout rules (Megatron's validations) and the layout search."""
import pytest

from planner.errors import UserError
from planner.parallel.layout import Layout
from planner.parallel.search import search_layouts
from planner.parallel.throughput import efficiency_factors, pipeline_bubble, stage_balance
from planner.shape import preset_shape

LLMJP = preset_shape("llm-jp-3-1.8b")


def test_llmjp_reference_layout_is_valid():
    lay = Layout(tp=1, pp=1, dp=32, micro_batch=4, grad_accum=4, recompute="selective")
    assert lay.validate(LLMJP, n_gpus=32, global_batch=512) == []
    assert lay.global_batch == 512 and lay.n_gpus == 32 and lay.distributed_optimizer
    assert Layout.from_dict(lay.to_dict()) == lay


@pytest.mark.parametrize("layout,n_gpus,gbs,needle", [
    (Layout(tp=3, dp=10), 30, 30, "heads"),  # 16 heads % 3
    (Layout(tp=1, pp=5, dp=6), 30, 30, "layers"),  # 24 layers % 5
    (Layout(tp=2, pp=2, dp=8, vpp=4), 32, 8, "vpp"),
    (Layout(tp=1, pp=1, dp=64, micro_batch=3), 64, 512, "global batch"),
    (Layout(tp=1, dp=8), 12, 8, "GPUs"),
    (Layout(tp=1, dp=8, sequence_parallel=True), 8, 8, "TP > 1"),
    (Layout(tp=2, cp=3, dp=2), 12, 2, "2·CP"),
    (Layout(tp=1, pp=1, dp=8, vpp=2), 8, 8, "PP > 1"),
    (Layout(dp=8, fsdp=True, shard_group=3), 8, 8, "shard group"),
])
def test_each_megatron_rule_is_reported(layout, n_gpus, gbs, needle):
    problems = layout.validate(LLMJP, n_gpus=n_gpus, global_batch=gbs)
    if needle == "vpp":
        assert problems == []  # 24 / 2 = 12 layers per stage, 12 % 4 == 0: valid
        assert any("vpp" in p for p in Layout(tp=2, pp=2, dp=8, vpp=5).validate(LLMJP, 32, 8))
        return
    assert any(needle in p for p in problems), problems
    with pytest.raises(UserError):
        layout.check(LLMJP, n_gpus, gbs)


def test_gqa_kv_heads_rule():
    llama3 = preset_shape("llama-3-8b")  # 32 heads, 8 kv heads
    assert Layout(tp=8, dp=1).validate(llama3, 8, 1) == []
    assert Layout(tp=16, dp=1).validate(llama3, 16, 1) == []  # TP % groups == 0 is allowed
    bad = llama3.replace(n_heads=24, n_kv_heads=6, head_dim=128)
    assert any("kv heads" in p for p in Layout(tp=4, dp=1).validate(bad, 4, 4))


def test_bad_layout_values_raise():
    with pytest.raises(UserError):
        Layout(tp=0)
    with pytest.raises(UserError):
        Layout(recompute="sometimes")
    with pytest.raises(UserError):
        Layout(zero_stage=4)


def test_pipeline_bubble_formula():
    # Narayanan et al. 2021: bubble / ideal = (p-1)/m (1F1B), (p-1)/(v m) interleaved
    assert pipeline_bubble(1, 8) == 0
    f = pipeline_bubble(8, 64)
    assert f / (1 - f) == pytest.approx(7 / 64)
    g = pipeline_bubble(8, 64, vpp=4)
    assert g / (1 - g) == pytest.approx(7 / 256)


def test_stage_balance_counts_the_logits_on_the_last_stage():
    shape = preset_shape("llama-3-8b")  # large vocab: the last stage is heavier
    assert stage_balance(shape, 1) == 1.0
    assert stage_balance(shape, 8) < stage_balance(shape, 2) < 1.0


def test_search_reproduces_llmjp_choice():
    # LLM-jp trained the 1.8B model with TP 1, PP 1 on 32 H100s at GBS 512 (llm-jp/scripts PR #42)
    res = search_layouts(LLMJP, "h100", 32, 512)
    best = res[0].layout
    assert (best.tp, best.pp, best.cp) == (1, 1, 1)
    assert best.dp == 32 and best.global_batch == 512
    assert res[0].memory.fits("h100")
    assert res[0].mfu == pytest.approx(0.40)


def test_search_65b_uses_model_parallelism_within_a_node():
    shape = preset_shape("llama-65b")
    res = search_layouts(shape, "a100-80gb", 480, 1920)
    assert len(res) > 0 and res.rejected
    for c in res:
        lay = c.layout
        assert lay.tp <= 8 and lay.n_gpus == 480
        assert lay.micro_batch * lay.dp * lay.grad_accum == 1920
        assert c.memory.fits("a100-80gb")
        assert lay.validate(shape, 480, 1920) == []
    # plain data parallelism cannot hold 65B parameters: some model parallelism is required
    assert res[0].layout.tp * res[0].layout.pp > 1
    assert any("does not fit" in r.reason for r in res.rejected)
    assert res.rejection_summary()
    # ranked best first by throughput
    tps = [c.tokens_per_second for c in res]
    assert tps == sorted(tps, reverse=True)


def test_full_recompute_is_a_stated_throughput_cost():
    lay = Layout(tp=1, dp=8, micro_batch=4, recompute="full")
    f = efficiency_factors(lay, 4096, 8)
    assert f["recompute"] == pytest.approx(0.75)
    assert "tp_cross_node" in efficiency_factors(Layout(tp=16, dp=1), 4096, 8)


def test_nothing_fits_says_what_to_change():
    with pytest.raises(UserError) as e:
        search_layouts(preset_shape("llama-2-70b"), "l40s", 8, 8)
    msg = str(e.value)
    assert "more GPUs" in msg and "GiB" in msg


def test_search_input_errors():
    with pytest.raises(UserError):
        search_layouts(LLMJP, "h100", 0, 512)
    with pytest.raises(UserError):
        search_layouts(LLMJP, "h100", 8, 512, recompute=("maybe",))
    with pytest.raises(UserError):
        search_layouts(LLMJP, "nope", 8, 512)
