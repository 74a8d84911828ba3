"""The attention-degeneracy diagnostic (proxy_train.attention_diagnostic): hand-built matrices with
known values, and agreement with the model's own attention (F.scaled_dot_product_attention)."""
import math

import numpy as np
import pytest
import torch

from proxy_train import attention_diagnostic as ad
from proxy_train.model import build_model, model_config

T, MIN = 32, ad.MIN_KEYS
KEPT = np.arange(MIN - 1, T)  # query positions the statistics use


def _single_column(j: int) -> torch.Tensor:
    a = torch.zeros(T, T)
    a[:, j] = 1.0
    a[:j, :] = torch.eye(T)[:j]  # rows before j cannot see column j (they are not kept anyway for j < MIN)
    return a


def _uniform_causal() -> torch.Tensor:
    a = torch.ones(T, T).tril()
    return a / a.sum(dim=1, keepdim=True)


@pytest.mark.parametrize("j", [0, 3])
def test_single_column_attention_is_rank_one_with_all_mass_on_one_key(j):
    s = ad.matrix_stats(_single_column(j))
    assert s["row_max"] == 1.0 and s["frac_rows_concentrated"] == 1.0 and s["top_column_mass"] == 1.0
    assert s["first_token_mass"] == (1.0 if j == 0 else 0.0)
    assert s["effective_rank"] == pytest.approx(1.0) and s["approx_rank"] == 1


def test_uniform_causal_attention_known_values():
    s = ad.matrix_stats(_uniform_causal())
    expect = float(np.mean(1.0 / (KEPT + 1)))  # row i spreads 1 over i + 1 keys
    assert s["row_max"] == pytest.approx(expect) and s["first_token_mass"] == pytest.approx(expect)
    assert s["top_column_mass"] == pytest.approx(expect)  # column 0 is seen by every row
    assert s["frac_rows_concentrated"] == 0.0
    assert 1.0 < s["effective_rank"] <= len(KEPT) and s["approx_rank"] > 1


def test_diagonal_attention_full_rank():
    """Each row on itself: all singular values 1 -> effective rank = rows, k*(0.9) = ceil(0.9 rows)."""
    s = ad.matrix_stats(torch.eye(T))
    n = len(KEPT)
    assert s["row_max"] == 1.0 and s["first_token_mass"] == 0.0
    assert s["top_column_mass"] == pytest.approx(1.0 / n)
    assert s["effective_rank"] == pytest.approx(n) and s["approx_rank"] == math.ceil(0.9 * n)


def test_effective_rank_and_approx_rank_definitions():
    assert ad.effective_rank(np.array([1.0, 1.0, 1.0, 1.0])) == pytest.approx(4.0)
    assert ad.effective_rank(np.array([3.0, 0.0])) == pytest.approx(1.0)
    # squared spectrum 16, 4, 0.25 (total 20.25): 16/20.25 = 0.79 < 0.9 <= 20/20.25 = 0.988 -> 2
    assert ad.approx_rank(np.array([4.0, 2.0, 0.5])) == 2


def _model(query_zero_init: bool, seed: int = 0):
    torch.manual_seed(seed)
    cfg = model_config(64, 32, 3, head_dim=8, max_seq_len=T, init_std=0.5, query_zero_init=query_zero_init,
                       readout_zero_init=False)
    return build_model(cfg, base_width=32)


def test_recomputed_probabilities_reproduce_the_layers_attention_output():
    """probs @ v equals what F.scaled_dot_product_attention handed to o_proj, in every layer."""
    model = _model(query_zero_init=False)
    tokens = torch.randint(0, 64, (2, T), generator=torch.Generator().manual_seed(1))
    seen: list[torch.Tensor] = []
    hooks = [b.attn.o_proj.register_forward_pre_hook(lambda m, a: seen.append(a[0].detach())) for b in model.blocks]
    inputs: list[tuple] = []
    hooks += [b.attn.register_forward_pre_hook(lambda m, a: inputs.append(a)) for b in model.blocks]
    with torch.no_grad():
        model(tokens)
    for h in hooks:
        h.remove()
    probs_all = ad.layer_probs(model, tokens)
    for block, args, out, probs in zip(model.blocks, inputs, seen, probs_all):
        p, v = ad.causal_probs(block.attn, *args)
        torch.testing.assert_close(p, probs)
        y = (p @ v).transpose(1, 2).reshape(out.shape)
        torch.testing.assert_close(y, out, rtol=1e-4, atol=1e-5)
        assert torch.allclose(p.sum(-1), torch.ones(()), atol=1e-5)
        assert float(p.triu(1).abs().max()) == 0.0  # causal
    assert ad.diagnose(model, tokens)[0]["row_max"] > float(np.mean(1.0 / (KEPT + 1)))


def test_zero_query_model_attends_uniformly():
    """μP's zero-initialised queries give logits 0, so softmax is uniform over the visible keys."""
    model = _model(query_zero_init=True)
    tokens = torch.randint(0, 64, (2, T), generator=torch.Generator().manual_seed(2))
    layers = ad.diagnose(model, tokens)
    ref = ad.matrix_stats(_uniform_causal())
    assert len(layers) == 3 and len(layers[0]["heads"]) == 4
    for r in layers:
        for m in ad.METRICS:
            assert r[m] == pytest.approx(ref[m], rel=1e-5), m
    assert ad.lazy_layers(layers) == []
    assert "L0 " in ad.summary_line({"layers": layers})


def test_record_skips_windows_too_short_to_judge():
    model = _model(query_zero_init=True)
    assert ad.record(model, data=None, seq_len=2 * ad.MIN_KEYS - 1) is None
