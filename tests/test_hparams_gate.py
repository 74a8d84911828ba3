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
    # the demo's hparams.yaml carries its sweep record (`sweep export`) and the transfer record of
    # studies/transfer (`transfer-check --record-into`): only the trial count fails
    assert [c.name for c in report.failures] == ["trials"]
    trials = report.check("trials")
    with open(ROOT / "studies/demo/trials.csv") as f:
        n_trials = sum(1 for _ in csv.DictReader(f))
    assert n_trials == 8 and trials.value == 8 and "8 finished trials (4 complete) < 30" in trials.detail
    edge = report.check("edge")
    assert edge.passed and "alpha_out at 19% of its range" in edge.detail
    transfer = json.loads((ROOT / "studies/transfer/transfer.json").read_text())
    assert report.check("transfer").value == pytest.approx(transfer["params"]["mup"]["drift_octaves"])
    ext = report.check("extrapolation")
    assert not ext.required and ext.value == pytest.approx(56) and "x56" in ext.detail
    scale = report.check("proxy_scale")
    assert not scale.required and not scale.passed
    assert "width 64 < 256" in scale.detail and "depth 2 < 4" in scale.detail
    text = "\n".join(report.lines())
    assert text.startswith("hyperparameter quality: FAIL (1 of 3 required checks failed)")
    assert len(report.reasons()) == 1 and report.reasons()[0].startswith("trials: ")
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
    bare = {k: v for k, v in _demo().to_dict().items() if k not in ("sweep", "transfer")}
    assert "sweep" not in HParams.from_dict(bare).to_dict()  # files without the records are written as before
    d = hp.to_dict()
    for key, bad, msg in (("sweep", {**d["sweep"], "n_finished": "many"}, "sweep.n_finished must be an integer"),
                          ("sweep", {**d["sweep"], "n_finished": -1}, "n_finished"),
                          ("transfer", {**d["transfer"], "widths": [64.5]}, r"transfer.widths\[0\]"),
                          ("transfer", {**d["transfer"], "drift": 0.1}, "unknown hparams.transfer fields")):
        with pytest.raises(UserError, match=msg):
            HParams.from_dict({**d, key: bad})


# ------------------------------------------------------------------ records written by the real commands
GATE_OBJ = ROOT / "tests" / "gate_objectives.py"


@pytest.fixture(scope="module")
def gate_data(tmp_path_factory):
    from proxy_train.data import prepare_data

    out = tmp_path_factory.mktemp("gatedata") / "data"
    prepare_data(out, source="stdlib", tokenizer="bytes", max_mb=0.3, progress=False)
    return out


def _sweep(study, data, trials):
    from conftest import run_cli

    r = run_cli("sweep", "--study", study, "--data", data, "--widths", "32", "--trials", trials, "--sampler", "tpe",
                "--pruner", "none", "--objective", f"{GATE_OBJ}:bowl_all", "--json", timeout=300)
    assert r.returncode == 0, r.stderr
    r = run_cli("sweep", "export", "--study", study, "--json", timeout=120)
    assert r.returncode == 0, r.stderr
    return study / "hparams.yaml"


def _check(out, data, widths, *extra):
    from conftest import run_cli

    return run_cli("transfer-check", "--data", data, "--out", out, "--widths", widths, "--lrs=-12:-6:1",
                   "--param", "mup", "--objective", f"{GATE_OBJ}:bowl_all", "--json", *extra, timeout=300)


def test_sweep_and_transfer_check_write_the_evidence_the_gate_passes(tmp_path, gate_data):
    """`scaleplan sweep` + `sweep export` + `transfer-check --record-into`, through Optuna and the
    study machinery (objective: tests/gate_objectives.py, a bowl with a known optimum): the records
    have planner/hparams.py's shape and the gate passes them."""
    from gate_objectives import best_log2_lr

    path = _sweep(tmp_path / "sw", gate_data, 40)
    hp = HParams.read(path)
    assert hp.sweep == {"sampler": "tpe", "n_finished": 40, "n_complete": 40, "widths": [32],
                        "space": {k: {"low": lo, "high": hi, "log": log} for k, (lo, hi, log) in SPACE.items()}}
    assert hp.transfer == {}
    report = hparams_quality(hp, 1024)
    assert [c.name for c in report.failures] == ["transfer"] and "no μTransfer check" in report.reasons()[0]

    r = _check(tmp_path / "tc", gate_data, "32,64,128", "--record-into", tmp_path / "sw")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["recorded_into"] == str(path)
    hp = HParams.read(path)
    rec = hp.transfer
    # a quadratic loss makes the 3-point parabola exact: the drift is the objective's own 0.2 octave
    assert rec["drift_octaves"] == pytest.approx(best_log2_lr(128) - best_log2_lr(32), abs=1e-9)
    assert rec["drift_octaves"] == pytest.approx(0.2, abs=1e-9)
    meta = json.loads((gate_data / "meta.json").read_text())
    assert rec == {"param": "mup", "widths": [32, 64, 128], "drift_octaves": rec["drift_octaves"],
                   "any_edge": False, "corpus_sha256": meta["sha256"], "steps": 150,
                   "hp": {"init_std": 0.02, "alpha_in": 1.0, "alpha_out": 1.0, "warmup_frac": 0.0}}
    report = hparams_quality(hp, 1024)
    assert report.passes, report.lines()
    assert "over widths [32, 64, 128]" in report.check("transfer").detail
    # a re-export (a longer sweep picking another trial) keeps the check: it tested μP on this corpus
    _sweep(tmp_path / "sw", gate_data, 44)
    again = HParams.read(path)
    assert again.sweep["n_finished"] == 44 and again.transfer == rec
    # without --data nothing runs: the finished check in --out is re-analysed and recorded
    from conftest import run_cli

    other = HParams(base_width=64, source={"corpus_sha256": meta["sha256"]}).write(tmp_path / "other.yaml")
    r = run_cli("transfer-check", "--out", tmp_path / "tc", "--record-into", other, "--json", timeout=120)
    assert r.returncode == 0, r.stderr
    assert HParams.read(other).transfer == rec and json.loads(r.stdout)["n_runs"] == 3 * 7


def test_thin_evidence_fails_the_gate_with_its_reasons(tmp_path, gate_data):
    """Too few trials and a two-width check, written by the same commands, fail on exactly those."""
    path = _sweep(tmp_path / "sw", gate_data, 12)
    r = _check(tmp_path / "tc", gate_data, "32,64", "--record-into", path)
    assert r.returncode == 0, r.stderr
    report = hparams_quality(HParams.read(path), 1024)
    assert {c.name for c in report.failures} >= {"trials", "transfer"}
    assert "12 finished trials (12 complete) < 30" in report.check("trials").detail
    assert "2 widths [32, 64] (need >= 3)" in report.check("transfer").detail


def test_transfer_record_refuses_a_mismatch_and_leaves_the_file(tmp_path, gate_data):
    """Parameterization, base width and corpus mismatches exit 2 with one line, before any run."""
    from conftest import run_cli

    meta = json.loads((gate_data / "meta.json").read_text())
    cases = [(dict(base_width=256), "32,64,128", "base width 256 lies outside the checked widths 32-128"),
             (dict(parameterization="sp"), "32,64,128", "its values are sp but the check ran mup only"),
             (dict(), "32,64,128", "is not the sweep's")]
    for i, (edits, widths, words) in enumerate(cases):
        source = {"corpus_sha256": "f" * 64} if words == "is not the sweep's" else {"corpus_sha256": meta["sha256"]}
        path = HParams(**{"base_width": 32, **edits}, source=source).write(tmp_path / f"hp{i}.yaml")
        before = path.read_bytes()
        r = _check(tmp_path / f"tc{i}", gate_data, widths, "--record-into", path)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert words in r.stderr and r.stderr.startswith("error: cannot record"), r.stderr
        assert path.read_bytes() == before and not (tmp_path / f"tc{i}").exists()
    r = run_cli("transfer-check", "--out", tmp_path / "none", "--record-into", tmp_path / "hp0.yaml")
    assert r.returncode == 2 and "holds no transfer check; pass --data" in r.stderr
