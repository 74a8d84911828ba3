"""Data mixtures and repetition (planner/plan/data_mixture.py) against published mixtures.

Published numbers used here:
* K2-65B stage 1 (LLM360/K2Datasets README, "Dataset Description: Stage 1", and the LLM360/K2 model
  card, "Datasets and Mix"): per dataset its starting tokens, multiplier and total tokens; Wikipedia
  (redpajama.wikipedia) 22.1B x 6 = 132.6B, 10.2% of 1.3T.
* LLM-jp v3 1.8B exp2 (llm-jp/scripts pretrain/scripts/v3-1.8b-exp2-sakura/train.sh, PR #42): the
  Megatron --data-path weights, one per shard, summing to the 2,072,488,058,295 tokens the script's
  comment names; its second epoch (branch v3-1.7b-2nd-epoch, pretrain/scripts/
  v3-1.7b-exp2-cpt-2epoch-sakura/train.sh) lists the same shards with the same weights. The unique
  size of each source is not in the scripts: the test takes one exp2 pass = the unique tokens (the
  weights are the shards' token counts), which gives 2 epochs for every source. "Japanese 4 epochs"
  (Japanese upsampled 2x within exp2) could not be confirmed from a readable source and is not tested.
"""
from __future__ import annotations

import copy
import math

import pytest
import yaml

from planner.data_constrained import MUENNIGHOFF2023, data_constrained_law
from planner.errors import UserError
from planner.laws import load_law
from planner.plan import Plan, PlanRequest, make_plan
from planner.plan.data_mixture import NEARLY_FREE_EPOCHS, read_mixture, repetition, repetition_warnings

B = 1e9
#: K2 stage 1: (dataset, starting tokens, total tokens), LLM360/K2Datasets README (a068dcd).
K2_STAGE1 = (("dm-math", 4.33, 13), ("pubmed-abstracts", 4.77, 14.3), ("uspto", 4.77, 14.3),
             ("pubmed-central", 26, 26), ("redpajama.arxiv", 27.3, 27.3), ("starcoder.spm", 67.6, 33.8),
             ("starcoder.fim", 67.6, 33.8), ("redpajama.stackexchange", 61.1, 61.1), ("starcoder", 132.6, 66.3),
             ("pile-of-law", 76.7, 76.7), ("redpajama.book", 80.6, 80.6), ("s2orc", 107.9, 107.9),
             ("redpajama.wikipedia", 22.1, 132.6), ("refinedweb", 612.3, 612.3))
#: LLM-jp exp2 --data-path weights summed per source (llm-jp/scripts v3-1.8b-exp2-sakura/train.sh).
LLMJP_EXP2 = {
    "code/stack": 114_051_163_723, "en/dolma-books": 5_494_262_694, "en/dolma-c4": 181_546_631_978,
    "en/dolma-cc-head": 608_473_758_941, "en/dolma-pes2o": 62_853_772_802, "en/dolma-reddit": 83_058_140_751,
    "en/dolma-wiki": 3_896_965_449, "en/wiki": 4_744_259_830, "ja/cc-1": 461_191_389_358, "ja/cc-2": 151_105_946_496,
    "ja/cc-3": 150_463_854_452, "ja/kaken": 1_826_105_478, "ja/warp-html-01-06": 1_329_440_698,
    "ja/warp-html-07-12": 1_397_268_214, "ja/warp-pdf-e00": 60_172_944_314, "ja/warp-pdf-e02": 177_161_775_259,
    "ja/wiki": 2_563_804_308, "ko/wiki": 316_296_219, "zh/wiki": 840_277_331}


def _k2_mixture():
    return [dict(prefix=n, weight=total * B, unique_tokens=start * B) for n, start, total in K2_STAGE1]


def _by_name(rep):
    return {s.name: s for s in rep.sources}


# ------------------------------------------------------------------------------ published mixtures
def test_k2_stage1_wikipedia_is_six_epochs():
    mix = _k2_mixture()
    total = sum(m["weight"] for m in mix)
    assert total == pytest.approx(1300 * B, rel=1e-9)  # the table's 1.3T total
    rep = repetition([("stage1", total, mix)], 65e9, MUENNIGHOFF2023)
    src = _by_name(rep)
    assert src["redpajama.wikipedia"].epochs == pytest.approx(6.0, rel=1e-9)
    assert src["redpajama.wikipedia"].weight == pytest.approx(0.102, abs=5e-4)  # "% of Total" 10.2%
    assert src["starcoder"].epochs == pytest.approx(0.5)
    assert src["dm-math"].epochs == pytest.approx(3.0, rel=2e-3)  # 13 / 4.33 (the table rounds 12.99)
    assert src["refinedweb"].epochs == pytest.approx(1.0)
    assert rep.max_epochs == pytest.approx(6.0)
    warned = repetition_warnings(rep)
    assert len(warned) == 1 and "redpajama.wikipedia is repeated 6.0 epochs" in warned[0]
    # the penalty comes from the sources repeated more than once; sources at <= 1 epoch cost nothing
    assert src["refinedweb"].loss_penalty == pytest.approx(0.0, abs=1e-12)
    assert src["redpajama.wikipedia"].loss_penalty > src["dm-math"].loss_penalty > 0
    assert rep.loss_repeated > rep.loss_fresh and rep.loss_penalty == pytest.approx(rep.loss_repeated - rep.loss_fresh)


def test_k2_preset_with_its_mixture(tmp_path):
    """The k2-65b preset (pretrain_65b.sh: 338,760 x 2040 x 2048 = 1.415T tokens) with the stage 1 mix:
    the mixture's shares over the preset's tokens put Wikipedia at 6 x 1.415/1.3 epochs."""
    plan = make_plan(PlanRequest(preset="k2-65b", data_sources=_k2_mixture()))
    rep = plan.data_repetition
    wiki = _by_name(rep)["redpajama.wikipedia"]
    assert wiki.epochs == pytest.approx(6.0 * plan.tokens / (1300 * B), rel=1e-9)
    assert rep.tokens == plan.tokens and rep.params == plan.shape.total_params
    assert sum(1 for w in plan.warnings if "is repeated" in w) == 1
    assert "second pass or fresh data?" in plan.summary()
    back = Plan.read(plan.write(tmp_path / "plan.yaml"))
    assert back.data_repetition == rep and back.plan_hash == plan.plan_hash and back.edited_from is None


def test_llmjp_second_pass_repeats_every_source_twice():
    assert sum(LLMJP_EXP2.values()) == 2_072_488_058_295  # train.sh: "2072488058295 (number of tokens)"
    mix = [dict(prefix=k, weight=v, unique_tokens=v) for k, v in LLMJP_EXP2.items()]
    plan = make_plan(PlanRequest(preset="llm-jp-3-1.8b-exp2", data_sources=mix))
    rep = plan.data_repetition
    src = _by_name(rep)
    # exp2: 988,240 steps = one pass (rounded up to whole steps); the second epoch: 992,240 more steps
    for name in LLMJP_EXP2:
        assert src[name].epochs_by_phase["exp2"] == pytest.approx(1.0, abs=1e-5)
        assert src[name].epochs_by_phase["exp2-cpt-2epoch"] == pytest.approx(992_240 / 988_240, rel=1e-5)
        assert src[name].epochs == pytest.approx(2.0, abs=0.005)
    english = sum(src[k].tokens for k in LLMJP_EXP2 if k.startswith("en/"))
    assert english / sum(v for k, v in LLMJP_EXP2.items() if k.startswith("en/")) == pytest.approx(2.0, abs=0.005)
    # 2 epochs is inside Muennighoff's "nearly free" range: no warning, and a small penalty
    assert rep.max_epochs < NEARLY_FREE_EPOCHS and not repetition_warnings(rep)
    assert 0 < rep.loss_penalty < 0.01


# ------------------------------------------------------------------------------ the law, per source
def test_effective_tokens_are_eq5_per_source_and_add_up():
    law = data_constrained_law(load_law("hoffmann2022"))
    mix = [dict(prefix="a", weight=3, unique_tokens=1e9), dict(prefix="b", weight=1, unique_tokens=1e11),
           dict(prefix="c", weight=1)]  # no unique tokens: fresh
    rep = repetition([("run", 5e10, mix)], 1e9, law)
    a, b, c = (_by_name(rep)[k] for k in "abc")
    assert a.tokens == pytest.approx(3e10) and a.epochs == pytest.approx(30.0)
    assert a.effective_tokens == pytest.approx(float(law.effective_data(3e10, 1e9)))
    assert a.effective_tokens == pytest.approx(1e9 * (1 + law.rd_star * (1 - math.exp(
        -29 / law.rd_star))))
    assert b.effective_tokens == pytest.approx(1e10) and c.epochs is None and c.effective_tokens == 1e10
    assert rep.effective_tokens == pytest.approx(a.effective_tokens + 2e10)
    base = law.base
    assert rep.loss_fresh == pytest.approx(float(law.predict(1e9, 5e10, 5e10)))
    assert rep.loss_repeated == pytest.approx(base.E + base.A / float(law.effective_params(1e9, 5e10, 1e9 + 2e10))
                                              ** base.alpha + base.B / rep.effective_tokens ** base.beta)
    # a single source: the mixture reduces to the law's own L(N, D, U)
    one = repetition([("run", 5e10, [dict(prefix="x", weight=1, unique_tokens=1e10)])], 1e9, law)
    assert one.loss_repeated == pytest.approx(float(law.predict(1e9, 5e10, 1e10)))


def test_four_epochs_is_nearly_free_and_more_is_not():
    """Muennighoff et al. 2023 (abstract): up to ~4 epochs is negligible; the penalty grows fast after."""
    law = MUENNIGHOFF2023
    pen = {e: repetition([("run", 2e11, [dict(prefix="x", weight=1, unique_tokens=2e11 / e)])], 1e10, law).loss_penalty
           for e in (1, 2, 4, 16, 40)}
    assert pen[1] == pytest.approx(0.0, abs=1e-12)
    assert 0 < pen[2] < pen[4] < pen[16] < pen[40]
    assert pen[4] < 0.25 * pen[16]
    rep = repetition([("run", 2e11, [dict(prefix="x", weight=1, unique_tokens=2e11 / 4.5)])], 1e10, law)
    assert repetition_warnings(rep)
    rep = repetition([("run", 2e11, [dict(prefix="x", weight=1, unique_tokens=2e11 / 4)])], 1e10, law)
    assert not repetition_warnings(rep)


# ------------------------------------------------------------------------------ phased plans
def test_phase_mixtures_with_unique_tokens():
    phases = [dict(name="p1", train_iters=1000, lr=3e-4, min_lr=3e-5, warmup_iters=10,
                   data=[dict(prefix="web", weight=3, unique_tokens=1e10), dict(prefix="code", weight=1,
                                                                               unique_tokens=1e8)]),
              dict(name="p2", mode="rewarm", lr=1e-4, warmup_iters=10, data=[dict(prefix="code", weight=1)])]
    plan = make_plan(PlanRequest(preset="llm-jp-3-1.8b", tokens=2000 * 512 * 4096, phases=phases))
    src = _by_name(plan.data_repetition)
    per_phase = 1000 * 512 * 4096
    assert src["code"].epochs_by_phase == pytest.approx({"p1": per_phase / 4 / 1e8, "p2": per_phase / 1e8})
    assert src["code"].epochs == pytest.approx(per_phase * 1.25 / 1e8)
    assert src["web"].epochs_by_phase == pytest.approx({"p1": per_phase * 0.75 / 1e10})
    assert any("source code is repeated" in w for w in plan.warnings)
    clash = copy.deepcopy(phases)
    clash[1]["data"][0]["unique_tokens"] = 2e8
    with pytest.raises(UserError, match="'code' is given unique_tokens 1e\\+08 and 2e\\+08"):
        make_plan(PlanRequest(preset="llm-jp-3-1.8b", tokens=2000 * 512 * 4096, phases=clash))


def test_phase_without_data_reads_the_plan_data_path_fresh():
    phases = [dict(train_iters=1000, lr=3e-4, min_lr=3e-5, warmup_iters=10),
              dict(data=[dict(prefix="/d/code", weight=1, unique_tokens=1e8)])]
    plan = make_plan(PlanRequest(preset="llm-jp-3-1.8b", tokens=2000 * 512 * 4096, phases=phases))
    src = _by_name(plan.data_repetition)
    assert src["(plan data path)"].epochs is None
    assert src["(plan data path)"].effective_tokens == src["(plan data path)"].tokens == 1000 * 512 * 4096
    assert src["/d/code"].epochs == pytest.approx(1000 * 512 * 4096 / 1e8)
    with pytest.raises(UserError, match="plan-level mixture is not used"):
        make_plan(PlanRequest(preset="llm-jp-3-1.8b", tokens=2000 * 512 * 4096, phases=[
            dict(phases[0], data=[dict(prefix="/d/web", weight=1)]), phases[1]],
            data_sources=[dict(prefix="x", weight=1, unique_tokens=1e9)]))


def test_no_mixture_no_section():
    plan = make_plan(PlanRequest(preset="llm-jp-3-1.8b-exp2"))
    assert plan.data_repetition is None and "data_repetition" not in plan.to_dict()
    assert not any(line.startswith("  data ") for line in plan.summary().splitlines())


# ------------------------------------------------------------------------------ bad input
def test_mixture_refuses_bad_sources():
    with pytest.raises(UserError, match="lacks unique_tokens"):
        read_mixture([dict(prefix="a", weight=1)])
    with pytest.raises(UserError, match="weight must be > 0|weight"):
        read_mixture([dict(prefix="a", weight=-1, unique_tokens=1e9)])
    with pytest.raises(UserError, match="twice"):
        read_mixture([dict(prefix="a", weight=1, unique_tokens=1e9)] * 2)
    with pytest.raises(UserError, match="non-empty list"):
        read_mixture({"other": []})
    with pytest.raises(UserError, match="unknown"):
        read_mixture([dict(prefix="a", weight=1, unique_tokens=1e9, epochs=3)])


@pytest.fixture(scope="module")
def k2_plan_dict():
    return make_plan(PlanRequest(preset="k2-65b", data_sources=_k2_mixture())).to_dict()


@pytest.mark.parametrize("edit, match", [
    (lambda d: d["sources"][0].update(epochs=-1.0), r"sources\[0\]\.epochs"),
    (lambda d: d["sources"][1].update(tokens="many"), r"sources\[1\]\.tokens must be a number"),
    (lambda d: d.update(extra=1), "unknown plan section data_repetition fields"),
    (lambda d: d.update(sources=[]), "at least one source"),
    (lambda d: d["sources"][0].update(epochs_by_phase={"p": -2.0}), "epochs_by_phase.p"),
    (lambda d: d.update(loss_fresh=float("nan")), "loss_fresh must be a finite number"),
])
def test_plan_yaml_section_is_checked(k2_plan_dict, edit, match):
    d = copy.deepcopy(k2_plan_dict)
    edit(d["data_repetition"])
    with pytest.raises(UserError, match=match):
        Plan.from_dict(d)


def test_cli_mixture(tmp_path, capsys):
    from scaleplan.cli import main

    good = tmp_path / "mix.yaml"
    good.write_text(yaml.safe_dump({"sources": _k2_mixture()}))
    out = tmp_path / "p.yaml"
    assert main(["plan", "--preset", "k2-65b", "--mixture", str(good), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "second pass or fresh data?" in text and "source     redpajama.wikipedia" in text
    assert Plan.read(out).data_repetition.max_epochs == pytest.approx(6.0 * 338_760 * 2040 * 2048 / (1300 * B))
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {prefix: a, weight: 1}\n")
    assert main(["plan", "--preset", "k2-65b", "--mixture", str(bad), "--out", str(tmp_path / "q.yaml")]) == 2
    err = capsys.readouterr().err
    assert "lacks unique_tokens" in err and "Traceback" not in err and not (tmp_path / "q.yaml").exists()


def test_the_plan_level_mixture_is_what_megatron_reads(tmp_path):
    """--mixture feeds the launch, not only the repetition analysis: the Megatron export's --data-path is
    the mixture's weights and prefixes in order (no silent placeholder), and a different data_path is refused."""
    import json

    from planner.export.megatron import export_megatron

    mix = [dict(prefix="/d/web", weight=0.7, unique_tokens=5e11), dict(prefix="/d/wiki", weight=0.3, unique_tokens=2e10)]
    plan = make_plan(PlanRequest(preset="llm-jp-3-1.8b", data_sources=mix))
    assert plan.data["data_path"] == [0.7, "/d/web", 0.3, "/d/wiki"]
    export_megatron(plan, tmp_path)
    args = json.loads((tmp_path / "megatron_args.json").read_text())["args"]
    assert args["--data-path"] == ["0.7", "/d/web", "0.3", "/d/wiki"]
    assert "DATA_PATH=(0.7 /d/web 0.3 /d/wiki)" in (tmp_path / "launch.sh").read_text()
    with pytest.raises(UserError, match="give one of them"):
        make_plan(PlanRequest(preset="llm-jp-3-1.8b", data_sources=mix, data={"data_path": "/other"}))
