"""The Plan page's μP table as each trainer applies it (app/trainer_table.py ``trainer_table``) and the
hparams checkbox that follows the quality gate (app/planview.py ``hparams_gate``, app/views/plan.py,
AppTest).

Expected numbers are derived by hand from the μP rules (planner/width_hparams.py; Tensor Programs V
Table 8) and the trainers' own rules, as measured in issue 14 on the demo-like plan (base width 64,
width 3584, m = 56, α_out 3.678, α_in 1.235, head dim 128):

* Megatron translate mode (no ``--use-mup``; NVIDIA/Megatron-LM ``get_standard_config_overrides``):
  one ``--decoupled-lr`` for embedding and output layer (the export's geometric mean of their μP
  updates ``lr α_in`` and ``lr α_out / m``), so embedding update x sqrt(α_out / (m α_in)) and readout
  the inverse; the norms get ``--lr`` = the hidden LR (x 1/m); attention stays 1/sqrt(d_head)
  (x sqrt(d_head) / attn_mult = 11.31).
* Megatron native (``--use-mup``, ``TransformerConfig.__post_init__``): every update exact; the readout
  init is not (μP zero-initialises it, Megatron cannot).
* torchtitan 0.3.0: multipliers folded into LR, init, eps and decay (exact by Adam's invariance);
  tied embeddings are refused (one matrix cannot carry α_in and α_out / m).
* HF config.json (transformers Granite): forward multipliers ``embedding_multiplier`` = α_in,
  ``1 / logits_scaling`` = α_out / m = 0.0657, ``attention_multiplier`` = attn_mult / d_head.
"""
from __future__ import annotations

import math
import re

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from app.planview import hparams_gate  # noqa: E402
from app.trainer_table import (RATIO_COLUMNS, TRAINER_VIEWS, ratio_flag, style_trainer_table,  # noqa: E402
                               trainer_table)
from app_fixtures import make_study  # noqa: E402
from conftest import ROOT  # noqa: E402
from planner.export.megatron import build_args  # noqa: E402
from planner.export.megatron_mup import compare, megatron_effective  # noqa: E402
from planner.hparams import HParams  # noqa: E402
from planner.plan import make_plan  # noqa: E402
from planner.shape import ModelShape  # noqa: E402
from proxy_train.sweep_space import SPACE  # noqa: E402

NATIVE, TRANSLATE, TITAN, HF = list(TRAINER_VIEWS)
DEMO_HP = dict(base_width=64, lr=2.47e-3, init_std=0.0175, alpha_in=1.235, alpha_out=3.678)
DEMO_SHAPE = dict(n_layers=40, d_model=3584, d_ffn=9216, n_heads=28, head_dim=128)


def _plan(hp=DEMO_HP, **shape):
    return make_plan(1e21, shape=ModelShape(vocab_size=32000, seq_len=2048, **{**DEMO_SHAPE, **shape}),
                     hparams=HParams(**hp), n_gpus=8)


@pytest.fixture(scope="module")
def plan():
    return _plan()


def _rows(tt):
    return {r["group"]: r for r in tt.table.to_dict("records")}


def test_megatron_native_is_exact_but_for_what_megatron_cannot_init(plan):
    tt = trainer_table(plan, NATIVE)
    rows = _rows(tt)
    assert tt.refusal is None
    for g in ("embedding", "hidden", "hidden_out", "readout", "norms"):
        assert rows[g]["update ratio"] == pytest.approx(1, rel=1e-6), g
        assert rows[g]["decay ratio"] == pytest.approx(1, rel=1e-9), g
    assert rows["attention softmax scale"]["forward ratio"] == pytest.approx(1, rel=1e-6)
    assert rows["attention softmax scale"]["μP mult"] == pytest.approx(1 / 128)  # attn_mult / d_head
    assert rows["readout"]["μP mult"] == pytest.approx(3.678 / 56)  # α_out / m = 0.0657
    assert math.isinf(rows["readout"]["init ratio"])  # μP's zero readout init, which Megatron lacks
    assert rows["hidden_out"]["init ratio"] == pytest.approx(1 / math.sqrt(2 * 40))  # depth-scaled init
    assert rows["hidden"]["eps ratio"] == pytest.approx(1 / 56)  # get_mup_config_overrides: eps / width_mult
    assert any("zero-initialises the readout" in n for n in tt.notes)


def test_megatron_translate_shows_the_issue_14_mismatches(plan):
    tt = trainer_table(plan, TRANSLATE)
    rows = _rows(tt)
    m, a_in, a_out = 56, 1.235, 3.678
    assert rows["embedding"]["update ratio"] == pytest.approx(math.sqrt(a_out / (m * a_in)), rel=1e-6)  # 0.2306
    assert rows["readout"]["update ratio"] == pytest.approx(math.sqrt(m * a_in / a_out), rel=1e-6)  # 4.336
    assert rows["norms"]["update ratio"] == pytest.approx(1 / m, rel=1e-6)
    assert rows["hidden"]["update ratio"] == pytest.approx(1, rel=1e-9)
    assert rows["attention softmax scale"]["trainer mult"] == pytest.approx(128 ** -0.5)
    assert rows["attention softmax scale"]["forward ratio"] == pytest.approx(math.sqrt(128), rel=1e-9)
    assert "refuses this plan without --allow-approximate-mup" in tt.refusal
    assert "readout update x4.34" in tt.refusal and "attention softmax scale x11.3" in tt.refusal
    # the table's ratios are megatron_mup.compare's on the same arguments
    check = compare(megatron_effective(build_args(plan, mup_mode="translate")), plan.hparams)
    for g, r in check.groups.items():
        assert (rows[g]["update ratio"], rows[g]["init ratio"], rows[g]["decay ratio"], rows[g]["eps ratio"]) == (
            r.update, r.init, r.decay, r.eps)


def test_torchtitan_folded_groups_are_exact_and_tied_is_refused(plan):
    tt = trainer_table(plan, TITAN)
    rows = _rows(tt)
    for g, r in rows.items():
        for c in RATIO_COLUMNS:
            if not math.isnan(r[c]):
                assert r[c] == pytest.approx(1, rel=1e-9), (g, c)
        if not g.startswith("attention softmax scale"):
            assert r["trainer mult"] == 1.0  # torchtitan's forward has no multiplier: all folded
    assert rows["readout"]["trainer lr"] == pytest.approx(2.47e-3 * 3.678 / 56)  # lr x α_out / m
    assert rows["query"]["μP mult"] == pytest.approx(math.sqrt(128) / 128)  # (attn_mult/d_head) / (1/sqrt(d_head))
    assert "--allow-approximate-mup" in tt.refusal and any("gradient clipping" in n for n in tt.notes)
    tied = trainer_table(_plan(dict(base_width=256, lr=4e-3, init_std=0.02, readout_zero_init=False),
                               n_layers=32, d_model=4096, d_ffn=11008, n_heads=32, n_kv_heads=8, tied=True), TITAN)
    assert tied.table is None and "tied embeddings" in tied.refusal


def test_hf_config_forward_multipliers(plan):
    rows = _rows(trainer_table(plan, HF))
    assert rows["embedding"]["trainer mult"] == pytest.approx(1.235)
    assert rows["readout"]["trainer mult"] == pytest.approx(3.678 / 56)
    assert rows["attention softmax scale"]["trainer mult"] == pytest.approx(1 / 128)
    assert all(r["forward ratio"] == pytest.approx(1) for r in rows.values())
    assert math.isnan(rows["hidden"]["trainer lr"])  # config.json carries no optimizer


def test_no_table_without_mup():
    assert trainer_table(make_plan(1e21, n_gpus=8), NATIVE) is None  # no hparams: DeepSeek's LR, SP


def test_flags_and_highlighting(plan):
    assert [ratio_flag(x) for x in (1.0, 1.0009, 1 / 1.0009, 1.002, 0.6, 2.0, 2.01, 0.49, math.inf,
                                     math.nan)] == ["", "", "", "off", "off", "off", "refuse", "refuse",
                                                    "refuse", ""]
    tt = trainer_table(plan, TRANSLATE)
    html = style_trainer_table(tt.table).to_html()
    cols = list(tt.table.columns)
    shaded = {}
    for selectors, color in re.findall(r"([^{}]*)\{\s*background-color: (#\w+)", html):  # CSS rules
        for row, col in re.findall(r"_row(\d+)_col(\d+)", selectors):
            shaded[(int(row), cols[int(col)])] = color
    groups = list(tt.table["group"])
    readout, embedding = groups.index("readout"), groups.index("embedding")
    hidden, attn = groups.index("hidden"), groups.index("attention softmax scale")
    assert shaded[(readout, "update ratio")] == "#f8d7da"     # x4.34: beyond the 2x refusal limit
    assert shaded[(embedding, "eps ratio")] == "#fff3cd"      # x1.235: off, within 2x
    assert shaded[(attn, "forward ratio")] == "#f8d7da"       # x11.3
    assert (hidden, "update ratio") not in shaded             # exact
    assert all(c in RATIO_COLUMNS for _, c in shaded)         # only ratios are shaded


# ------------------------------------------------------------------ the page
def _passing_study(root):
    """make_study's folder, its hparams.yaml with the evidence records a long sweep leaves."""
    study = make_study(root)
    hp = HParams.read(study / "hparams.yaml")
    hp.sweep = {"sampler": "tpe", "n_finished": 40, "n_complete": 30, "widths": [128],
                "space": {k: {"low": lo, "high": hi, "log": log} for k, (lo, hi, log) in SPACE.items()}}
    hp.transfer = {"param": "mup", "widths": [64, 128, 256, 512], "drift_octaves": 0.3, "any_edge": False}
    hp.write(study / "hparams.yaml")
    return study


def test_gate_view(tmp_path):
    study = _passing_study(tmp_path / "s")
    assert hparams_gate(study / "hparams.yaml").passes
    failing = make_study(tmp_path / "f")
    view = hparams_gate(failing / "hparams.yaml")
    assert not view.passes and "trials: " in view.caption and "transfer: " in view.caption
    (failing / "hparams.yaml").write_text("base_width: -1\n")
    assert hparams_gate(failing / "hparams.yaml").caption.startswith("Not preselected: the file cannot be read")


def _app():
    return AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=90)


def test_page_preselects_passing_hparams_and_shows_the_trainer_table(tmp_path, monkeypatch):
    _passing_study(tmp_path / "studies")
    monkeypatch.setenv("SCALEPLAN_STUDIES", str(tmp_path / "studies"))
    at = _app().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.checkbox(key="use_hparams").value is True
    assert any(c.value.startswith("Preselected: the file passes") for c in at.caption)
    assert any("μP hyperparameters transferred" in c.value for c in at.caption)
    # the stated checks at the plan's width: base width 128, extrapolated x(d_model / 128)
    stated = next(c.value for c in at.caption if c.value.startswith("Transfer: extrapolation: target width"))
    d_model = int(re.search(r"target width (\d+) / base width 128", stated).group(1))
    assert f"x{d_model / 128:.3g}" in stated and "proxy_scale: below it: width 128 < 256" in stated
    assert at.selectbox(key="trainer_view").value == NATIVE
    assert any(list(d.value.columns)[:2] == ["group", "update ratio"] for d in at.dataframe)
    at.selectbox(key="trainer_view").set_value(TRANSLATE).run()
    assert not at.exception
    assert any("refuses this plan without --allow-approximate-mup" in w.value for w in at.warning)


def test_page_ticked_failing_hparams_are_forced_with_a_warning(tmp_path, monkeypatch):
    make_study(tmp_path / "studies")
    monkeypatch.setenv("SCALEPLAN_STUDIES", str(tmp_path / "studies"))
    at = _app().run()
    assert at.checkbox(key="use_hparams").value is False
    at.checkbox(key="use_hparams").check().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("FAIL the transfer quality gate" in w.value for w in at.warning), [w.value for w in at.warning]
    assert any("μP hyperparameters transferred" in c.value for c in at.caption)
