"""The hyperparameter quality gate (planner/hparams_gate.py) on the demo's real hparams.yaml.

The demo's sweep (studies/demo: 8 trials at widths 32/64, no transfer check) must fail with its
specific reasons; a passing file is the same one with the evidence records filled in, and each
required check is then broken one at a time.
"""
from __future__ import annotations

import csv
import json
import math

import pytest

from conftest import ROOT
from planner.errors import UserError
from planner.hparams import HParams
from planner.hparams_gate import hparams_quality
from proxy_train.sweep_space import SPACE

DEMO = ROOT / "studies/demo/hparams.yaml"
TARGET = 3584  # the demo plan's d_model (studies/demo/plan.yaml)


def _demo() -> HParams:
    return HParams.read(DEMO)


def _passing(**edits) -> HParams:
    """The demo's values with the sweep and transfer records a trustworthy sweep would leave."""
    d = _demo().to_dict()
    d["sweep"] = {"sampler": "tpe", "n_finished": 40, "n_complete": 22, "widths": [64],
                  "space": {k: {"low": lo, "high": hi, "log": log} for k, (lo, hi, log) in SPACE.items()}}
    d["transfer"] = {"param": "mup", "widths": [64, 128, 256, 512], "drift_octaves": 0.4, "any_edge": False,
                     "corpus_sha256": d["source"]["corpus_sha256"], "steps": 2000}
    for key, value in edits.items():
        section, _, field = key.partition("__")
        if field:
            d[section] = {**d[section], field: value}
        else:
            d[section] = value
    return HParams.from_dict(d)


def test_demo_hparams_fail_with_their_specific_reasons():
    report = hparams_quality(_demo(), TARGET)
    assert not report.passes
    assert [c.name for c in report.failures] == ["trials", "edge", "transfer"]
    trials = report.check("trials")
    with open(ROOT / "studies/demo/trials.csv") as f:
        n_trials = sum(1 for _ in csv.DictReader(f))
    # the bound read from the recorded command is the sweep's real trial count, below 30
    assert n_trials == 8 and trials.value == 8 and "at most 8 trials (< 30)" in trials.detail
    assert "no search ranges" in report.check("edge").detail
    assert "no μTransfer check" in report.check("transfer").detail
    ext = report.check("extrapolation")
    assert not ext.required and ext.value == pytest.approx(56) and "x56" in ext.detail
    scale = report.check("proxy_scale")
    assert not scale.required and not scale.passed
    assert "width 64 < 256" in scale.detail and "depth 2 < 4" in scale.detail
    text = "\n".join(report.lines())
    assert text.startswith("hyperparameter quality: FAIL (3 of 3 required checks failed)")
    assert len(report.reasons()) == 3 and report.reasons()[0].startswith("trials: ")
    assert json.loads(json.dumps(report.to_dict()))["passes"] is False


def test_a_sweep_with_the_evidence_passes():
    hp = _passing()
    report = hparams_quality(hp, TARGET)
    assert report.passes, report.lines()
    assert report.check("trials").value == 40
    edge = report.check("edge")
    # the demo's closest value to a bound: alpha_out 3.678 on the log range [1/8, 8] is 18.7% below the top
    top_margin = 1 - math.log(hp.alpha_out / 0.125) / math.log(8 / 0.125)
    assert edge.value == pytest.approx(top_margin) and round(top_margin, 3) == 0.187
    assert "alpha_out at 19% of its range" in edge.detail
    assert report.check("transfer").value == 0.4
    assert "covered widths 64-512 (x8 of the base)" in report.check("extrapolation").detail
    assert report.check("proxy_scale").passed is False  # stated, not required


@pytest.mark.parametrize("edits, check, words", [
    (dict(sweep__n_finished=29), "trials", "29 finished trials"),
    # a sixth dimension (weight decay searched) raises the bar to 10 + 4 x 6 = 34
    (dict(sweep__n_finished=33, sweep__space={**{k: {"low": lo, "high": hi, "log": log} for k, (lo, hi, log)
                                                  in SPACE.items()},
                                               "weight_decay": {"low": 1e-3, "high": 0.3, "log": True}},
          weight_decay=0.01), "trials", "< 34"),
    (dict(lr=0.06), "edge", "lr = 0.06 within 5% of its high bound"),
    (dict(alpha_in=0.1), "edge", "alpha_in = 0.1 outside its low bound"),
    (dict(transfer__widths=[64, 128]), "transfer", "2 widths"),
    (dict(transfer__widths=[64, 96, 128]), "transfer", "span 2x"),
    (dict(transfer__drift_octaves=1.3), "transfer", "drifts 1.3 octaves"),
    (dict(transfer__any_edge=True), "transfer", "grid edge"),
    (dict(transfer__param="sp"), "transfer", "the check ran sp"),
    (dict(transfer__corpus_sha256="0" * 64), "transfer", "another corpus"),
    (dict(transfer={}), "transfer", "no μTransfer check"),
    (dict(sweep={"n_finished": 40}), "edge", "no search ranges"),
])
def test_each_required_check_fails_on_its_own(edits, check, words):
    report = hparams_quality(_passing(**edits), TARGET)
    assert [c.name for c in report.failures] == [check], report.lines()
    assert words in report.check(check).detail


def test_missing_sweep_summary_without_a_command_says_so():
    hp = _passing(sweep={"space": _passing().sweep["space"]}, meta={})
    trials = hparams_quality(hp, TARGET).check("trials")
    assert not trials.passed and trials.value is None and "no sweep summary" in trials.detail
    # a command asking for enough trials is no evidence that they finished
    hp = _passing(sweep={"space": hp.sweep["space"]}, meta={"command": "scaleplan sweep --trials=64 --widths 64"})
    assert "no sweep summary" in hparams_quality(hp, TARGET).check("trials").detail


def test_transfer_is_moot_at_the_base_width_and_impossible_for_sp():
    assert hparams_quality(_passing(transfer={}), 64).check("transfer").passed
    sp = _passing(parameterization="sp", transfer__param="sp")
    check = hparams_quality(sp, TARGET).check("transfer")
    assert not check.passed and "no width-transfer rule" in check.detail
    held = _passing(transfer__hp={"init_std": 0.02, "alpha_out": 1.0})
    check = hparams_quality(held, TARGET).check("transfer")
    assert check.passed and "held alpha_out, init_std at other values" in check.detail


def test_records_round_trip_and_bad_records_are_user_errors(tmp_path):
    hp = _passing()
    back = HParams.read(hp.write(tmp_path / "hparams.yaml"))
    assert back == hp and hparams_quality(back, TARGET).passes
    assert "sweep" not in _demo().to_dict()  # files without the records are written as before
    d = hp.to_dict()
    for key, bad, msg in (("sweep", {**d["sweep"], "n_finished": "many"}, "sweep.n_finished must be an integer"),
                          ("sweep", {**d["sweep"], "n_finished": -1}, "n_finished"),
                          ("transfer", {**d["transfer"], "widths": [64.5]}, r"transfer.widths\[0\]"),
                          ("transfer", {**d["transfer"], "drift": 0.1}, "unknown hparams.transfer fields")):
        with pytest.raises(UserError, match=msg):
            HParams.from_dict({**d, key: bad})
