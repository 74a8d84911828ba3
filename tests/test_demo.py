"""`scaleplan demo --fast`: the whole pipeline at toy scale, then a rerun that skips every stage."""
from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import yaml

from conftest import run_cli

STAGES = ["data", "coord_mup", "coord_sp", "sweep", "sweep_export", "ladder", "fit", "plan",
          "export_megatron", "export_torchtitan", "export_hf"]


@pytest.mark.slow
def test_fast_demo_runs_and_resumes(tmp_path):
    study = tmp_path / "demo"
    r = run_cli("demo", "--study", study, "--fast", "--json", timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    rec = json.loads(r.stdout)
    assert list(rec["stages"]) == STAGES and all(s["status"] == "ok" for s in rec["stages"].values())
    for name in ("hparams.yaml", "runs.csv", "holdout.json", "fit.json", "plan.yaml", "trials.csv",
                 "optuna.journal", "coord_mup/coord_check.json", "coord_sp/coord_check.json", ".gitignore"):
        assert (study / name).is_file(), name
    for trainer in ("megatron", "torchtitan", "hf"):
        assert any((study / "exports" / trainer).iterdir())
    st = yaml.safe_load((study / "study.yaml").read_text())
    assert st["demo"]["stages"]["ladder"]["command"].startswith("scaleplan ladder")
    assert "torch" in st["demo"]["versions"] and st["ladder"]["schedule"] == "wsd"
    # SP must fail the coordinate check (the activations blow up with width)
    assert json.loads((study / "coord_sp/coord_check.json").read_text())["passed"] is False
    df = pd.read_csv(study / "runs.csv")
    assert (df["status"] == "ok").all() and (df["role"] == "holdout_extra").sum() == 1
    hp = yaml.safe_load((study / "hparams.yaml").read_text())
    assert hp["parameterization"] == "mup" and hp["vocab_size"] == 320
    # rerun as from a fresh clone (token files are not committed): every stage is done and skipped,
    # the data is not rebuilt, nothing is retrained, study.yaml is left as it was
    shutil.rmtree(study / "data")
    before = (study / "study.yaml").read_text()
    r2 = run_cli("demo", "--study", study, "--fast", "--json", timeout=300)
    assert r2.returncode == 0, r2.stderr[-2000:]
    assert "data: not needed" in r2.stderr and "[demo] ladder: scaleplan" not in r2.stderr
    assert not (study / "data").exists() and (study / "study.yaml").read_text() == before
    assert json.loads(r2.stdout)["total_seconds_this_run"] < 10
