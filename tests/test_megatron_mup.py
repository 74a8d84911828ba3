"""What Megatron-LM derives per parameter group from the exported flags, against μP (HParams.at_width).

The model under test (planner/export/megatron_mup.py) is written from NVIDIA/Megatron-LM d98e8a64
(TransformerConfig.__post_init__, get_mup_config_overrides, GPTModel.__init__); the expected
translate-mode ratios below are derived by hand from the μP table (planner/width_hparams.py) and
Megatron's rules, never read back from the code.
"""
from __future__ import annotations

import json
import math

import pytest

from conftest import ROOT, run_cli
from planner.errors import UserError
from planner.export.megatron import build_args, render_megatron
from planner.export.megatron_mup import compare, megatron_effective, native_mup_flags
from planner.hparams import HParams
from planner.plan import Plan, make_plan
from planner.shape import ModelShape

# (hparams, shape): α_out != 1, α_in != 1, attn_mult != 1, base widths 64 and 256, head dims 64 and
# 128, GQA, tied, weight decay under both rules, and α_out/m exactly 1 (Megatron's auto rule).
CASES = {
    "demo-like": (dict(base_width=64, lr=2.47e-3, init_std=0.0175, alpha_in=1.235, alpha_out=3.678),
                  dict(n_layers=40, d_model=3584, d_ffn=9216, n_heads=28, head_dim=128)),
    "gqa-hd64-attn4-wd": (dict(base_width=256, lr=6e-3, init_std=0.08, alpha_out=2.0, attn_mult=4.0,
                               weight_decay=0.1, readout_zero_init=False),
                          dict(n_layers=24, d_model=2048, d_ffn=5632, n_heads=32, n_kv_heads=8, head_dim=64)),
    "small-mults-unscaled-wd": (dict(base_width=64, lr=1e-2, init_std=0.03, alpha_in=2.0, alpha_out=0.5,
                                     attn_mult=0.25, weight_decay=0.05, wd_rule="unscaled",
                                     readout_zero_init=False, query_zero_init=False),
                                dict(n_layers=16, d_model=1024, d_ffn=2816, n_heads=16, n_kv_heads=4, head_dim=64)),
    "tied-gqa-hd128": (dict(base_width=256, lr=4e-3, init_std=0.02, alpha_out=1.0, readout_zero_init=False),
                       dict(n_layers=32, d_model=4096, d_ffn=11008, n_heads=32, n_kv_heads=8, head_dim=128,
                            tied=True)),
    "alpha-out-equals-m": (dict(base_width=64, lr=3e-3, init_std=0.02, alpha_out=16.0),
                           dict(n_layers=12, d_model=1024, d_ffn=2816, n_heads=8, head_dim=128)),
    "demo-like-wd": (dict(base_width=64, lr=2.47e-3, init_std=0.0175, alpha_in=1.235, alpha_out=3.678,
                          weight_decay=0.1),
                     dict(n_layers=40, d_model=3584, d_ffn=9216, n_heads=28, head_dim=128)),
    "base256-alpha1-wd-tied": (dict(base_width=256, lr=6e-3, init_std=0.08, weight_decay=0.1, readout_zero_init=False),
                               dict(n_layers=24, d_model=2048, d_ffn=5632, n_heads=16, head_dim=128, tied=True)),
}


def _plan(name):
    hp, shape = CASES[name]
    return HParams(**hp), make_plan(1e21, shape=ModelShape(vocab_size=32000, seq_len=2048, **shape),
                                    hparams=HParams(**hp), n_gpus=8)


def _json_args(plan, mode):
    """The args exactly as megatron_args.json stores them (strings, True for switches)."""
    files = render_megatron(plan, mup_mode=mode, allow_approximate_mup=True)
    return json.loads(files["megatron_args.json"])["args"]


@pytest.mark.parametrize("name", list(CASES))
def test_native_mode_reproduces_mup_for_every_group(name):
    hp, plan = _plan(name)
    s = plan.shape
    m, L = s.d_model / hp.base_width, s.n_layers
    width = hp.at_width(s.d_model, s.n_layers, s.head_dim)
    assert plan.is_mup and width.m_d == m
    for args in (build_args(plan, mup_mode="native"), _json_args(plan, "native")):
        check = compare(megatron_effective(args), width)
        # with weight decay under wd_rule mup the export runs embedding and readout at the hidden LR and
        # folds the rest of their μP update into the multiplier (native_mup_flags): updates and the
        # multiplier-folded inits stay exact, the multiplier itself carries the fold
        folded = bool(hp.weight_decay) and hp.wd_rule == "mup"
        for group, r in check.groups.items():
            assert r.update == pytest.approx(1, rel=1e-6), group
            if not folded or group not in ("embedding", "readout"):
                assert r.multiplier == pytest.approx(1, rel=1e-6), group
            assert r.decay == pytest.approx(1, rel=1e-9), group
        assert check.attention == pytest.approx(1, rel=1e-6)
        assert check.off_by_more_than(1 + 1e-6) == []
        init = {g: r.init for g, r in check.groups.items()}
        assert init["embedding"] == pytest.approx(1, rel=1e-6) and init["hidden"] == pytest.approx(1, rel=1e-6)
        # Megatron's output_layer_init_method (attention proj, fc2) is depth-scaled: std/sqrt(2L m)
        assert init["hidden_out"] == pytest.approx(1 / math.sqrt(2 * L), rel=1e-6)
        assert init["readout"] == (math.inf if hp.readout_zero_init else pytest.approx(1, rel=1e-6))
        # get_mup_config_overrides divides the hidden Adam eps by width_mult; the proxy does not
        eps = {g: r.eps for g, r in check.groups.items()}
        assert [eps[g] for g in ("hidden", "hidden_out")] == pytest.approx([1 / m] * 2, rel=1e-9)
        # at the hidden LR, Megatron's eps for embedding and readout is eps/m_d as for hidden matrices
        fold_eps = 1 / m if folded else 1
        assert [eps[g] for g in ("embedding", "readout")] == pytest.approx([fold_eps] * 2, rel=1e-9)
        assert eps["norms"] == pytest.approx(1, rel=1e-9)


def test_native_values_from_first_principles():
    """The demo-like case by hand: Megatron's softmax scale, logit multiplier, hidden LR and eps."""
    hp, plan = _plan("demo-like")
    eff = megatron_effective(_json_args(plan, "native"))
    m = 3584 / 64
    assert eff.width_mult == m and eff.softmax_scale == pytest.approx(1.0 / 128, rel=1e-12)  # attn_mult/d_head
    assert eff.groups["readout"].multiplier == pytest.approx(3.678 / 56, rel=1e-12)  # not 3.678 (56x)
    assert eff.groups["embedding"].multiplier == pytest.approx(1.235, rel=1e-12)
    assert eff.groups["hidden"].lr == pytest.approx(2.47e-3 / 56, rel=1e-12)
    assert [eff.groups[g].lr for g in ("norms", "readout")] == pytest.approx([2.47e-3] * 2, rel=1e-12)
    assert eff.groups["hidden"].init_std == pytest.approx(0.0175 / math.sqrt(56), rel=1e-12)
    assert eff.groups["hidden"].eps == pytest.approx(1e-8 / 56, rel=1e-12)


def test_output_mult_equal_to_one_survives_megatrons_auto_rule():
    hp, plan = _plan("alpha-out-equals-m")  # alpha_out/m = 16/16 = 1 exactly
    args = dict(build_args(plan, mup_mode="native"))
    assert float(args["--mup-output-mult"]) != 1.0 and float(args["--mup-output-mult"]) == pytest.approx(1, rel=1e-15)
    assert megatron_effective(args).groups["readout"].multiplier == pytest.approx(1, rel=1e-15)
    args["--mup-output-mult"] = "1.0"  # what a plain 1.0 would have given: 1/width_mult
    assert megatron_effective(args).groups["readout"].multiplier == pytest.approx(1 / 16)


@pytest.mark.parametrize("name", list(CASES))
def test_translate_mode_mismatches_are_exact(name):
    hp, plan = _plan(name)
    s = plan.shape
    m, L, dh = s.d_model / hp.base_width, s.n_layers, s.head_dim
    a_in, a_out = hp.alpha_in, hp.alpha_out
    check = compare(megatron_effective(_json_args(plan, "translate")), hp.at_width(s.d_model, L, dh))
    r = check.groups
    # one --decoupled-lr for embedding (μP update lr*a_in) and readout (lr*a_out/m): their geometric mean
    split = math.sqrt(m * a_in / a_out)
    assert r["embedding"].update == pytest.approx(1 / split, rel=1e-9)
    assert r["readout"].update == pytest.approx(split, rel=1e-9)
    assert [r["hidden"].update, r["hidden_out"].update] == pytest.approx([1, 1], rel=1e-9)
    assert r["norms"].update == pytest.approx(1 / m, rel=1e-9)  # norms get --lr = lr/m
    assert check.attention == pytest.approx(math.sqrt(dh) / hp.attn_mult, rel=1e-9)  # 1/sqrt(d) vs attn_mult/d
    # the embedding init carries alpha_in; the readout gets the hidden std (untied) or the embedding's (tied)
    assert [r["embedding"].init, r["hidden"].init] == pytest.approx([1, 1], rel=1e-9)
    assert r["hidden_out"].init == pytest.approx(1 / math.sqrt(2 * L), rel=1e-9)
    readout_init = (m * a_in / a_out) if s.tied else math.sqrt(m) / a_out
    assert r["readout"].init == (math.inf if hp.readout_zero_init else pytest.approx(readout_init, rel=1e-9))
    assert r["embedding"].multiplier == pytest.approx(1 / a_in) and r["readout"].multiplier == pytest.approx(m / a_out)
    expected_off = [g for g, x in (("embedding", 1 / split), ("readout", split), ("norms", 1 / m)) if not 0.5 <= x <= 2]
    off = check.off_by_more_than(2.0)
    assert [o.split()[0] for o in off if "attention" not in o] == expected_off
    assert any("attention" in o for o in off) == (not 0.5 <= math.sqrt(dh) / hp.attn_mult <= 2)


def test_translate_refuses_unless_allowed_and_writes_the_ratios():
    hp, plan = _plan("demo-like")
    with pytest.raises(UserError, match="native") as e:
        render_megatron(plan, mup_mode="translate")
    assert "readout update x4.34" in str(e.value) and "--allow-approximate-mup" in str(e.value)
    files = render_megatron(plan, mup_mode="translate", allow_approximate_mup=True)
    head = files["launch.sh"]
    assert "APPROXIMATE" in head and "norms update x0.0179" in head and "(ratio 11.31)" in head
    meta = json.loads(files["megatron_args.json"])["meta"]
    assert meta["mup_check"]["groups"]["readout"]["update"] == pytest.approx(math.sqrt(56 * 1.235 / 3.678))
    assert "APPROXIMATE" not in render_megatron(plan)["launch.sh"]  # native is the default


def test_megatron_effective_reads_sp_and_decoupled_flags():
    base = {"--hidden-size": "1024", "--num-layers": "8", "--num-attention-heads": "8", "--lr": "1e-3",
            "--untie-embeddings-and-output-weights": True}
    sp = megatron_effective(base)
    assert sp.mode == "translate" and sp.softmax_scale == pytest.approx(1 / math.sqrt(128))
    assert sp.groups["hidden"].init_std == 0.02 and sp.groups["embedding"].weight_decay == 0.01  # parser defaults
    assert sp.groups["norms"].weight_decay == 0.0 and sp.groups["readout"].lr == 1e-3
    native = megatron_effective({**base, "--use-mup": True, "--mup-base-hidden-size": "256", "--decoupled-lr": "5e-3",
                                 "--kv-channels": "64", "--mup-attn-scale-power": "0.5"})
    assert native.width_mult == 4 and native.softmax_scale == pytest.approx(1 / 8)
    # decoupled LR keeps embedding and output layer; hidden lr/m; norms the base --lr
    assert native.groups["embedding"].lr == native.groups["readout"].lr == 5e-3
    assert native.groups["hidden"].lr == pytest.approx(2.5e-4) and native.groups["norms"].lr == 1e-3
    assert native.groups["readout"].multiplier == pytest.approx(0.25)
    with pytest.raises(UserError, match="--optimizer"):
        megatron_effective({**base, "--optimizer": "sgd"})
    with pytest.raises(UserError, match="--lr"):
        megatron_effective({k: v for k, v in base.items() if k != "--lr"})
    with pytest.raises(UserError, match="number"):
        megatron_effective({**base, "--lr": "fast"})
    for flag in ("--num-attention-heads", "--kv-channels", "--mup-base-hidden-size", "--mup-base-head-dim"):
        with pytest.raises(UserError, match=f"{flag} must be positive"):
            megatron_effective({**base, "--use-mup": True, flag: "0"})


def test_cli_translate_refusal_exits_2(tmp_path):
    hp, plan = _plan("demo-like")
    plan.write(tmp_path / "plan.yaml")
    r = run_cli("export", tmp_path / "plan.yaml", "--trainer", "megatron", "--megatron-mup", "translate",
                "--out", tmp_path / "t")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "--megatron-mup native" in r.stderr
    assert not (tmp_path / "t").exists()
    r = run_cli("export", tmp_path / "plan.yaml", "--trainer", "megatron", "--megatron-mup", "translate",
                "--allow-approximate-mup", "--out", tmp_path / "t")
    assert r.returncode == 0, r.stderr
    r = run_cli("export", tmp_path / "plan.yaml", "--trainer", "hf", "--allow-approximate-mup", "--out", tmp_path / "h")
    assert r.returncode == 2 and "megatron only" in r.stderr


def test_committed_demo_export_is_exact_mup():
    """studies/demo/exports/megatron (native, the default) against the demo plan's μP values."""
    plan = Plan.read(ROOT / "studies/demo/plan.yaml")
    stored = json.loads((ROOT / "studies/demo/exports/megatron/megatron_args.json").read_text())
    assert stored["meta"]["mup_mode"] == "native" and stored["meta"]["scaleplan_plan_hash"] == plan.plan_hash
    check = compare(megatron_effective(stored["args"]), plan.hparams)
    assert all(r.update == pytest.approx(1, rel=1e-6) and r.multiplier == pytest.approx(1, rel=1e-6)
               for r in check.groups.values())
    assert check.attention == pytest.approx(1, rel=1e-6)
    assert stored["meta"]["mup_check"] == json.loads(json.dumps(check.to_dict()))


# ------------------------------------------------------------------ weight decay (issue 14 item 3)

def _proxy_decay(hp, group, m):
    """The proxy's per-step decay lr*wd at width multiplier m, by hand (proxy_train/optim.py:
    MuAdamW under wd_rule mup gives hidden lr/m and wd*m; unscaled keeps wd; norms never decay)."""
    if group == "norms":
        return 0.0
    if group in ("hidden", "hidden_out") and hp.wd_rule == "unscaled":
        return hp.lr * hp.weight_decay / m
    return hp.lr * hp.weight_decay


def _native_flag_args(plan, *, as_text=False):
    """build_args(native) with native_mup_flags' values in place (as repr strings when as_text)."""
    s, t = plan.shape, plan.training
    flags = native_mup_flags(plan.hparams, s.head_dim, min_lr_ratio=t.min_lr / t.lr)
    fmt = (lambda v: v if v is True else repr(v)) if as_text else (lambda v: v)
    return {**dict(build_args(plan, mup_mode="native")), **{f: fmt(v) for f, v in flags}}


@pytest.mark.parametrize("name", list(CASES))
def test_native_flags_give_every_group_the_proxys_decay(name):
    """wd 0 and > 0, both rules, base widths 64 and 256, tied and untied: with native_mup_flags every
    group's Megatron decay per step is the proxy rule's, and updates, multiplier-folded inits and the
    softmax scale stay exact."""
    hp, plan = _plan(name)
    s = plan.shape
    m = s.d_model / hp.base_width
    width = hp.at_width(s.d_model, s.n_layers, s.head_dim)
    for args in (_native_flag_args(plan), _native_flag_args(plan, as_text=True)):
        eff = megatron_effective(args)
        check = compare(eff, width)
        for group, v in eff.groups.items():
            assert v.decay_per_step == pytest.approx(_proxy_decay(hp, group, m), rel=1e-9, abs=1e-30), group
            assert check.groups[group].decay == pytest.approx(1, rel=1e-9), group
            assert check.groups[group].update == pytest.approx(1, rel=1e-9), group
        assert check.decay_off_by_more_than(1 + 1e-9) == [] and check.off_by_more_than(1 + 1e-9) == []
        assert check.attention == pytest.approx(1, rel=1e-9)
        inits = {g: r.init for g, r in check.groups.items()}
        assert [inits["embedding"], inits["hidden"]] == pytest.approx([1, 1], rel=1e-9)
        assert inits["readout"] == (math.inf if hp.readout_zero_init else pytest.approx(1, rel=1e-9))
    folded = hp.weight_decay > 0 and hp.wd_rule == "mup"
    assert ("--decoupled-lr" in _native_flag_args(plan)) == folded  # only where one --weight-decay needs it


def test_native_flags_by_hand_for_the_demo_with_decay():
    """demo-like-wd (m_d = 56, wd 0.1, wd_rule mup): embedding and output layer at the hidden LR, the
    factor 56 moved into their multipliers and out of the embedding std."""
    hp, plan = _plan("demo-like-wd")
    flags = dict(native_mup_flags(plan.hparams, 128, min_lr_ratio=0.1))
    assert flags["--lr"] == pytest.approx(2.47e-3) and flags["--weight-decay"] == pytest.approx(0.1 * 56)
    assert flags["--decoupled-lr"] == pytest.approx(2.47e-3 / 56) and flags["--decoupled-min-lr"] == pytest.approx(
        2.47e-4 / 56)
    assert flags["--mup-embedding-mult"] == pytest.approx(1.235 * 56)
    assert flags["--mup-output-mult"] == pytest.approx(3.678)  # alpha_out/m x 56
    assert flags["--embedding-init-method-std"] == pytest.approx(0.0175 / 56)
    assert flags["--init-method-std"] == pytest.approx(0.0175)
    # decay per step: hidden (2.47e-3/56) * 5.6 = embedding (2.47e-3/56) * 5.6 = 2.47e-4 = lr * wd
    eff = megatron_effective(_native_flag_args(plan))
    assert [eff.groups[g].decay_per_step for g in ("embedding", "hidden", "readout")] == pytest.approx([2.47e-4] * 3)
    # alpha_out = 1 would become exactly 1.0 after folding: Megatron would replace it by 1/width_mult
    tied = dict(native_mup_flags(_plan("base256-alpha1-wd-tied")[1].hparams, 128))
    assert tied["--mup-output-mult"] != 1.0 and tied["--mup-output-mult"] == pytest.approx(1, rel=1e-15)
    with pytest.raises(UserError, match="SP"):
        native_mup_flags(HParams(parameterization="sp", base_width=64).at_width(1024), 128)


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("mode", ["native", "translate"])
def test_exported_decay_matches_or_is_stated_in_the_header(name, mode):
    """What `scaleplan export --trainer megatron` writes: each group's decay is the proxy rule's, or
    launch.sh's header states the rule and that group's ratio (the ratios also go to the meta)."""
    hp, plan = _plan(name)
    files = render_megatron(plan, mup_mode=mode, allow_approximate_mup=True)
    head = files["launch.sh"].split("ARGS=(")[0]
    meta = json.loads(files["megatron_args.json"])["meta"]["mup_check"]
    check = compare(megatron_effective(_json_args(plan, mode)), plan.hparams)
    for group, r in check.groups.items():
        assert meta["groups"][group]["decay"] == pytest.approx(r.decay)
        if not r.decay == pytest.approx(1, rel=1e-9):
            assert f"{group} x{r.decay:.4g}" in head and "proxy rule: " in head, (group, r.decay)
    if hp.weight_decay == 0:
        assert "weight decay per step" not in head and "decay_rule" not in meta
    else:
        assert meta["decay_rule"] == ("uniform" if hp.wd_rule == "mup" else "unscaled")
        rule = "the same lr*wd in every matrix group" if hp.wd_rule == "mup" else "hidden lr*wd = the embedding's / m_d"
        assert f"proxy rule: {rule}" in head
    for off in check.decay_off_by_more_than(2.0):
        assert off in head


def test_decay_mismatches_are_named():
    hp, plan = _plan("demo-like-wd")
    args = dict(build_args(plan, mup_mode="native"))
    check = compare(megatron_effective({**args, "--weight-decay": "0"}), plan.hparams)
    assert check.decay_off_by_more_than(2.0) == ["embedding decay x0", "hidden decay x0", "hidden_out decay x0",
                                                 "readout decay x0"]
    # a decaying trainer against a proxy without decay: "x inf"
    _, plain = _plan("demo-like")
    check = compare(megatron_effective(dict(build_args(plain, mup_mode="native")) | {"--weight-decay": "0.1"}),
                    plain.hparams)
    assert "hidden decay xinf" in check.decay_off_by_more_than(2.0)
    assert any("weight decay per step" in line for line in check.lines())  # stated though the proxy has none
    with pytest.raises(UserError, match="constant --weight-decay"):
        megatron_effective({**args, "--weight-decay-incr-style": "linear"})
