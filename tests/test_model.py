import math

import pytest
import torch

from planner.shape import ModelShape, swiglu_ffn_dim
from proxy_train.config import TrainConfig
from proxy_train.model import build_model, model_config, width_mult
from proxy_train.optim import make_optimizer

torch.set_num_threads(1)


def _pair(width=64, **kw):
    """μP at m_d = 1 and SP with the same function: μP attention 1/d_head * sqrt(d_head) = SP's 1/sqrt."""
    common = dict(n_layers=2, head_dim=16, readout_zero_init=False, query_zero_init=False, max_seq_len=32, **kw)
    mup_cfg = model_config(256, width, parameterization="mup", attn_mult=math.sqrt(16), **common)
    sp_cfg = model_config(256, width, parameterization="sp", **common)
    torch.manual_seed(0)
    mu = build_model(mup_cfg, base_width=width)
    torch.manual_seed(0)
    sp = build_model(sp_cfg)
    return mu, sp


def test_mup_at_base_width_is_a_reparameterization_of_sp():
    mu, sp = _pair()
    assert width_mult(mu) == 1.0
    for (n1, p1), (n2, p2) in zip(mu.named_parameters(), sp.named_parameters()):
        assert n1 == n2 and torch.equal(p1, p2), n1  # same seed -> identical init at m_d = 1
    x = torch.randint(0, 256, (2, 32))
    assert torch.allclose(mu(x), sp(x), atol=1e-6)
    # one optimizer step keeps them equal: MuAdamW at m_d = 1 is AdamW
    cfg_mu = TrainConfig(data="x", d_model=64, parameterization="mup", base_width=64, lr=1e-2, weight_decay=0.1)
    cfg_sp = cfg_mu.replace(parameterization="sp")
    for model, cfg in ((mu, cfg_mu), (sp, cfg_sp)):
        opt = make_optimizer(model, cfg)
        loss = torch.nn.functional.cross_entropy(model(x).view(-1, 256), x.view(-1))
        loss.backward()
        opt.step()
    assert torch.allclose(mu(x), sp(x), atol=1e-5)


def test_mup_init_and_lr_scale_with_width():
    torch.manual_seed(0)
    cfg = model_config(256, 512, 2, head_dim=16, parameterization="mup", init_std=0.02, max_seq_len=16)
    m = build_model(cfg, base_width=64)  # m_d = 8
    assert width_mult(m) == 8.0
    k = m.blocks[0].attn.k_proj.weight
    assert k.std().item() == pytest.approx(0.02 / math.sqrt(8), rel=0.05)
    assert m.embed.weight.std().item() == pytest.approx(0.02, rel=0.05)  # constant in width
    assert torch.count_nonzero(m.lm_head.weight) == 0 and torch.count_nonzero(m.blocks[0].attn.q_proj.weight) == 0
    assert m.blocks[0].attn.scale == pytest.approx(1.0 / 16)
    opt = make_optimizer(m, TrainConfig(data="x", d_model=512, base_width=64, lr=0.01, weight_decay=0.1))
    by_kind = {g["kind"]: g for g in opt.param_groups if g["params"] and g["kind"] != "hidden"}
    hidden = [g for g in opt.param_groups if g["kind"] == "hidden" and g["params"]]
    assert by_kind["embedding"]["lr"] == 0.01 and by_kind["readout"]["lr"] == 0.01
    # MuAdamW: hidden lr / m_d, wd * m_d (grouped by fan-in multiplier; d_ffn rounds to a multiple of 8)
    qk = next(g for g in hidden if any(p is k for p in g["params"]))
    assert qk["lr"] == pytest.approx(0.01 / 8) and qk["weight_decay"] == pytest.approx(0.1 * 8)
    opt2 = make_optimizer(m, TrainConfig(data="x", d_model=512, base_width=64, lr=0.01, weight_decay=0.1, wd_rule="unscaled"))
    qk2 = next(g for g in opt2.param_groups if any(p is k for p in g["params"]))
    assert qk2["lr"] == pytest.approx(0.01 / 8) and qk2["weight_decay"] == pytest.approx(0.1)


def test_parameter_count_matches_planner_shape():
    for d, L, kw in ((64, 2, dict(head_dim=16)), (96, 3, dict(n_heads=3))):
        cfg = model_config(320, d, L, parameterization="sp", **kw)
        m = build_model(cfg)
        shape = ModelShape(n_layers=L, d_model=d, d_ffn=cfg.shape.d_ffn, n_heads=cfg.shape.n_heads,
                           head_dim=cfg.shape.head_dim, vocab_size=320)
        assert sum(p.numel() for p in m.parameters()) == shape.total_params
    assert swiglu_ffn_dim(768) == 2048  # 8/3 * 768 = 2048 exactly (Llama's rule before its 256-rounding)


def test_depth_scaling_multiplier_and_state_dict_copy_keeps_infshape():
    from proxy_train.model import branch_multiplier
    assert branch_multiplier("completep", 8, 2) == 0.25
    assert branch_multiplier("depth-mup", 8, 2) == 0.5
    cfg = model_config(256, 64, 2, head_dim=16, parameterization="mup", max_seq_len=16)
    a = build_model(cfg, base_width=32)
    b = build_model(cfg, base_width=32, init=False)
    b.load_state_dict(a.state_dict())
    x = torch.randint(0, 256, (1, 16))
    assert torch.equal(a(x), b(x)) and b.lm_head.weight.infshape.width_mult() == 2.0
