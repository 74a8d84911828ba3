"""HParams: file format, validation, and μP transfer checked against the `mup` package itself."""
from __future__ import annotations

import math

import pytest

from planner.errors import UserError
from planner.hparams import HParams, load_hparams


def test_at_base_width_is_the_base_values():
    hp = HParams(base_width=256, lr=6e-3, init_std=0.08, weight_decay=0.1, readout_zero_init=False)
    v = hp.at_width(256)
    assert v.m_d == 1
    for group in ("embedding", "hidden", "readout"):
        assert v.groups[group].lr == pytest.approx(6e-3)
        assert v.groups[group].init_std == pytest.approx(0.08)
    assert v.groups["readout"].multiplier == 1.0


def test_mup_rules_at_a_wider_model():
    # Cerebras-GPT's published μP base values (notes mup-and-sweeps.md §2.3): base width 256,
    # eta 6e-3, sigma 0.08, alpha_out 1; at d_model 2048 (m_d = 8):
    hp = HParams(base_width=256, lr=6e-3, init_std=0.08, weight_decay=0.1, wd_rule="mup", alpha_in=10.0,
                 readout_zero_init=False, base_head_dim=64)
    v = hp.at_width(2048, head_dim=64)
    g = v.groups
    assert v.m_d == 8
    assert g["hidden"].lr == pytest.approx(6e-3 / 8)
    assert g["hidden"].init_std == pytest.approx(0.08 / math.sqrt(8))
    assert g["hidden"].weight_decay == pytest.approx(0.8)  # MuAdamW: wd * m_d
    assert g["embedding"].lr == g["readout"].lr == g["norms"].lr == pytest.approx(6e-3)
    assert g["embedding"].init_std == pytest.approx(0.08)
    assert g["embedding"].multiplier == 10.0
    assert g["readout"].multiplier == pytest.approx(1 / 8)
    assert v.attention.scale == pytest.approx(1 / 64)
    assert g["norms"].weight_decay == 0.0


def test_unscaled_wd_rule_and_zero_init_readout():
    hp = HParams(base_width=128, weight_decay=0.1, wd_rule="unscaled", readout_zero_init=True)
    v = hp.at_width(1024)
    assert v.groups["hidden"].weight_decay == pytest.approx(0.1)
    assert v.groups["readout"].init_std == 0.0


def test_transfer_matches_mup_package_muadamw():
    """Our per-group LR and wd equal what mup's MuAdamW actually sets on a real model."""
    torch = pytest.importorskip("torch")
    mup = pytest.importorskip("mup")
    torch.set_num_threads(1)

    class Net(torch.nn.Module):
        def __init__(self, d):
            super().__init__()
            self.emb = torch.nn.Embedding(50, d)
            self.hidden = torch.nn.Linear(d, d, bias=False)
            self.norm = torch.nn.LayerNorm(d, bias=False)
            self.out = mup.MuReadout(d, 50, bias=False)

    base_w, width = 32, 256
    model = Net(width)
    mup.set_base_shapes(model, Net(base_w), delta=Net(base_w * 2))
    lr, wd = 1e-2, 0.1
    opt = mup.MuAdamW(model.parameters(), lr=lr, weight_decay=wd)
    by_param = {}
    for group in opt.param_groups:
        for p in group["params"]:
            by_param[id(p)] = (group["lr"], group["weight_decay"])
    ours = HParams(base_width=base_w, lr=lr, weight_decay=wd, wd_rule="mup").at_width(width).groups
    assert by_param[id(model.hidden.weight)][0] == pytest.approx(ours["hidden"].lr)
    assert by_param[id(model.hidden.weight)][1] == pytest.approx(ours["hidden"].weight_decay)
    assert by_param[id(model.emb.weight)][0] == pytest.approx(ours["embedding"].lr)
    assert by_param[id(model.out.weight)][0] == pytest.approx(ours["readout"].lr)
    assert by_param[id(model.norm.weight)][0] == pytest.approx(ours["norms"].lr)
    # MuReadout's forward multiplier is output_mult / width_mult
    assert model.out.output_mult / model.out.width_mult() == pytest.approx(ours["readout"].multiplier)
    # mup.init.normal_ on a hidden matrix gives std / sqrt(m_d)
    torch.manual_seed(0)
    mup.init.normal_(model.hidden.weight, std=0.02)
    assert model.hidden.weight.std().item() == pytest.approx(
        HParams(base_width=base_w, init_std=0.02).at_width(width).hidden.init_std, rel=0.03)


def test_sp_passes_values_through_with_a_warning():
    hp = HParams(parameterization="sp", base_width=128, lr=1e-3)
    v = hp.at_width(4096)
    assert v.groups["hidden"].lr == 1e-3
    assert any("no transfer guarantee" in w for w in v.warnings)
    assert v.attention.rule == "1/sqrt(d_head)"
    assert not hp.at_width(128).warnings


def test_depth_mismatch_warns():
    v = HParams(base_width=128, base_depth=4).at_width(1024, n_layers=24)
    assert any("depth" in w for w in v.warnings)


def test_yaml_round_trip(tmp_path):
    hp = HParams(base_width=128, base_depth=4, base_head_dim=32, lr=0.0078, source={"study": "s", "trial": 3})
    path = hp.write(tmp_path / "hparams.yaml")
    back = HParams.read(path)
    assert back == hp
    assert load_hparams(str(path)) == hp
    assert load_hparams(hp.to_dict()) == hp


@pytest.mark.parametrize("bad, msg", [
    ({"parameterization": "ntk", "base_width": 128}, "unknown parameterization"),
    ({"base_width": 128, "lr": -1e-3}, "lr must be a positive"),
    ({"lr": 1e-3}, "base_width"),
    ({"base_width": 0}, "base_width must be a positive"),
    ({"base_width": 128, "betas": [0.9]}, "betas"),
    ({"base_width": 128, "learning_rate": 1e-3}, "unknown hparams fields"),
    ({"base_width": 128, "wd_rule": "sqrt"}, "wd_rule"),
])
def test_bad_hparams_raise_user_errors(bad, msg):
    with pytest.raises(UserError, match=msg):
        HParams.from_dict(bad)


def test_bad_file(tmp_path):
    p = tmp_path / "h.yaml"
    p.write_text("parameterization: [oops\n")
    with pytest.raises(UserError, match="not valid YAML"):
        HParams.read(p)
    with pytest.raises(UserError, match="not found"):
        HParams.read(tmp_path / "missing.yaml")


def test_width_values_are_typed_and_round_trip():
    from planner.width_hparams import WidthHParams

    v = HParams(base_width=128, lr=4e-3, base_depth=2).at_width(4096, n_layers=32)
    assert isinstance(v, WidthHParams) and v.is_mup and v.hidden.lr == pytest.approx(4e-3 / 32)
    assert list(v.to_dict()["groups"]) == ["embedding", "hidden", "readout", "norms"]
    assert WidthHParams.from_dict(v.to_dict()) == v


# ------------------------------------------------------------------ weight decay (issue 14 item 3)

@pytest.mark.parametrize("base", [64, 256])
@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_per_step_decay_under_each_rule(base, wd):
    """lr*wd per group, derived by hand: MuAdamW keeps it at lr*wd in every matrix group; unscaled
    leaves the hidden one at lr*wd/m_d; norms never decay."""
    lr = 4e-3
    for width in (base, 4 * base, 56 * base):
        m = width / base
        mup = HParams(base_width=base, lr=lr, weight_decay=wd, wd_rule="mup").at_width(width)
        unscaled = HParams(base_width=base, lr=lr, weight_decay=wd, wd_rule="unscaled").at_width(width)
        for group in ("embedding", "hidden", "readout"):
            assert mup.groups[group].decay_per_step == pytest.approx(lr * wd, rel=1e-12)
        assert unscaled.hidden.decay_per_step == pytest.approx(lr * wd / m, rel=1e-12)
        assert unscaled.embedding.decay_per_step == unscaled.readout.decay_per_step == pytest.approx(lr * wd)
        assert mup.norms.decay_per_step == unscaled.norms.decay_per_step == 0.0
        expected = "none" if wd == 0 else "uniform"
        assert mup.decay_rule == expected
        assert unscaled.decay_rule == (expected if m == 1 or wd == 0 else "unscaled")
    sp = HParams(parameterization="sp", base_width=base, lr=lr, weight_decay=wd).at_width(8 * base)
    assert sp.decay_rule == ("none" if wd == 0 else "uniform")


@pytest.mark.parametrize("base, rule", [(64, "mup"), (256, "mup"), (64, "unscaled")])
def test_proxy_optimizer_decays_as_width_hparams_say(base, rule):
    """The proxy's own optimizer (proxy_train/optim.py) on a real μP model: every parameter's
    lr*wd equals its WidthHParams group's decay_per_step."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("mup")
    from proxy_train.config import TrainConfig
    from proxy_train.model import build_model, model_config
    from proxy_train.optim import make_optimizer

    torch.set_num_threads(1)
    width, lr, wd = 512, 6e-3, 0.1
    model = build_model(model_config(64, width, 2, head_dim=32, parameterization="mup", max_seq_len=16),
                        base_width=base)
    opt = make_optimizer(model, TrainConfig(data="x", d_model=width, base_width=base, head_dim=32, lr=lr,
                                            weight_decay=wd, wd_rule=rule))
    expected = HParams(base_width=base, lr=lr, weight_decay=wd, wd_rule=rule).at_width(width).groups
    names = {id(p): n for n, p in model.named_parameters()}
    seen = set()
    for g in opt.param_groups:
        for p in g["params"]:
            name, kind = names[id(p)], model.param_kind(names[id(p)])
            group = {"norm": "norms"}.get(kind, kind)
            seen.add(group)
            # down_proj's fan-in is d_ffn, whose multiplier differs from m_d by the rounding of d_ffn
            tol = 0.05 if rule == "unscaled" and "down_proj" in name else 1e-9
            decay = g["lr"] * g["weight_decay"]
            assert decay == pytest.approx(expected[group].decay_per_step, rel=tol, abs=1e-15), name
    assert seen == {"embedding", "hidden", "readout", "norms"}
