"""`scaleplan study import`: published runs as study folders, checked against the sources' own numbers.

Outside facts used: Porian et al. 2024's per-budget optima (porian2024_isoflop_optima.csv, from
their analysis code) vs an isoFLOP fit of the imported points; Muennighoff et al. 2023's run
names (e.g. 2b855b9b = 2.8B params, 55B tokens, 9B unique) and their published R_N* = 5.309743
(datablations README, with R_D* = 15.387756) refitted from the imported table; Besiroglu et al.
2024's Approach-3 fit of the Chinchilla runs (arXiv:2404.10102, eq. 4). The committed reference
studies must equal a fresh import (runs.csv byte for byte, the fit to solver precision).
"""
from __future__ import annotations

import json
import math
import subprocess

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import ROOT
from planner.errors import UserError
from planner.study_build import build_study
from planner.study_import import PORIAN_DEFAULT_CONFIG, SOURCES, import_runs

STUDIES = ROOT / "studies"
COMMITTED = ("porian2024", "muennighoff2023")


@pytest.fixture(scope="module")
def data(shared_data):
    return shared_data / "external"


def test_porian_points_give_their_published_optima(data):
    from planner.isoflop import fit_isoflop

    runs = import_runs("porian2024", data)
    assert list(runs.columns[:7]) == ["run_id", "N", "D", "C", "loss", "status", "source"]
    assert len(runs) == 88 and (runs["config"] == PORIAN_DEFAULT_CONFIG).all() and (runs["status"] == "ok").all()
    assert np.allclose(runs["C"], 6 * runs["N"] * runs["D"], rtol=1e-12)  # their budgets are C = 6 N D
    res = fit_isoflop(runs["N"].to_numpy(), runs["loss"].to_numpy(), runs["C"].to_numpy(), bootstrap=0)
    opt = pd.read_csv(data / "porian2024_isoflop_optima.csv")
    opt = opt[opt["config"] == PORIAN_DEFAULT_CONFIG]
    assert len(opt) == len(res.optima) == 12
    for b in res.optima:
        row = opt.iloc[int(np.argmin(np.abs(np.log(opt["flops"] / b.C))))]
        assert b.refused is None and abs(math.log(b.C / row["flops"])) < 1e-9
        # our parabola vertex within 2 of their bootstrap log-std of N* (~0.11) at every budget
        assert abs(math.log(b.N_opt / row["N_star"])) < 2 * row["N_star_logstd"], (b.C, b.N_opt, row["N_star"])
    a_theirs = np.polyfit(np.log(opt["flops"]), np.log(opt["N_star"]), 1)[0]
    assert res.a == pytest.approx(a_theirs, abs=0.03)
    with pytest.raises(UserError, match="choose one of"):
        import_runs("porian2024", data, config="rw/nonsense")


def test_muennighoff_columns_and_their_published_decay_constant(data):
    from planner.data_constrained import MUENNIGHOFF2023, fit_data_constrained

    runs = import_runs("muennighoff2023", data).set_index("run_id")
    assert len(runs) == 182
    r = runs.loc["2b855b9b"]  # their name: 2.8B parameters, 55B tokens, 9B unique tokens
    assert r["N"] == pytest.approx(2.81e9) and r["D"] == 55e9 and r["U"] == 9e9 and r["epochs"] == pytest.approx(55 / 9)
    assert r["status"] == "repeated_data" and r["C"] == pytest.approx(6 * 2.81e9 * 55e9)
    assert ((runs["status"] == "ok") == (runs["D"] <= runs["U"])).all() and (runs["status"] == "ok").sum() == 29
    fit = fit_data_constrained(runs["N"], runs["D"], runs["U"], runs["loss"], rd_star=MUENNIGHOFF2023.rd_star)
    assert fit.law.rn_star == pytest.approx(5.309743, rel=0.01)


def test_chinchilla_study_is_built_on_demand_and_never_committed(data, tmp_path):
    rec = build_study("chinchilla-epoch2024", tmp_path / "chin", data_dir=data, bootstrap=20, factors=(30.0,))
    assert not rec["may_commit"] and rec["rows"] == 245
    folder = tmp_path / "chin"
    assert "never commit" in (folder / "README.md").read_text() and not (folder / "LICENSE").exists()
    fit = json.loads((folder / "fit.json").read_text())
    # Besiroglu et al. 2024 eq. 4 on the same rows, 5 highest-loss dropped: E 1.8172, A 482.01, B 2085.43,
    # alpha 0.3478, beta 0.3658
    assert fit["n_dropped"] == 5 and fit["E"] == pytest.approx(1.8172, rel=0.01)
    assert fit["alpha"] == pytest.approx(0.3478, abs=0.003) and fit["beta"] == pytest.approx(0.3658, abs=0.003)
    assert fit["A"] == pytest.approx(482.01, rel=0.05) and fit["B"] == pytest.approx(2085.43, rel=0.05)
    assert set(fit["ci"]) == {"E", "A", "B", "alpha", "beta"} and fit["backtest"]["splits"][0]["factor"] == 30.0
    assert "studies/chinchilla-epoch2024/" in (ROOT / ".gitignore").read_text().splitlines()
    tracked = subprocess.run(["git", "ls-files", "studies/chinchilla-epoch2024"], cwd=ROOT, capture_output=True,
                             text=True).stdout
    assert tracked == ""


@pytest.mark.parametrize("key", COMMITTED)
def test_committed_study_equals_a_fresh_import(key, data, tmp_path):
    from planner.fit import ChinchillaFitter
    from planner.runs import load_runs

    folder = STUDIES / key
    assert sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) < 1_000_000
    build_study(key, tmp_path / key, data_dir=data, fit=False)
    for name in ("runs.csv", "LICENSE", "NOTICE"):
        assert (tmp_path / key / name).read_bytes() == (folder / name).read_bytes(), name
    rec = yaml.safe_load((folder / "study.yaml").read_text())["reference"]
    fresh = yaml.safe_load((tmp_path / key / "study.yaml").read_text())["reference"]
    assert rec["data_sha256"] == fresh["data_sha256"] and rec["licence"] == SOURCES[key].licence
    assert rec["command"] == f"scaleplan study import {key} --out studies/{key}"
    fit = json.loads((folder / "fit.json").read_text())
    df = load_runs(folder / "runs.csv", n_col="N", loss_col="loss", d_col="D")
    refit = ChinchillaFitter(**SOURCES[key].fit_options).fit(df["N"], df["D"], df["loss"])
    for k in ("E", "A", "B", "alpha", "beta"):
        assert fit[k] == pytest.approx(refit.params_[k], rel=1e-6), k
        assert fit["ci"][k][0] <= fit[k] <= fit["ci"][k][1]
    assert fit["bootstrap"]["n"] == 200 and [s["factor"] for s in fit["backtest"]["splits"]] == [3, 10, 30, 100]
    assert {"runs_and_law", "residuals", "backtest"} <= {p.name.split(".")[0] for p in (folder / "figures").iterdir()}


def test_cli_import_and_bad_input(data, tmp_path, capsys):
    from scaleplan.cli import main

    assert main(["study", "import", "muennighoff2023", "--out", str(tmp_path / "m"), "--data", str(data),
                 "--no-fit"]) == 0
    assert "29 with status ok" in capsys.readouterr().out and (tmp_path / "m" / "runs.csv").is_file()
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    cases = [(["porian2024", "--out", str(other)], "not an earlier import"),
             (["porian2024", "--out", str(other / "notes.txt")], "is a file"),
             (["porian2024", "--out", str(tmp_path / "x"), "--data", str(tmp_path)], "not found"),
             (["muennighoff2023", "--out", str(tmp_path / "y"), "--config", "a/b"], "porian2024 only"),
             (["porian2024", "--out", str(tmp_path / "z"), "--backtest-factors", "0.5"], "factors")]
    for args, match in cases:
        assert main(["study", "import", *args, "--data", str(data)] if "--data" not in args
                    else ["study", "import", *args]) == 2, args
        err = capsys.readouterr().err.strip()
        assert match in err and "\n" not in err, (args, err)
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]  # nothing written on refusal
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists() and not (tmp_path / "z").exists()
