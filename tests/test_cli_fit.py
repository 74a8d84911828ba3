"""`scaleplan fit` end to end: JSON keys, fit.json, HTML report, bad input exits 2 with one line."""
import json

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli


@pytest.fixture(scope="module")
def runs_csv(tmp_path_factory):
    rng = np.random.default_rng(0)
    N, D = np.meshgrid(np.geomspace(1e7, 1e9, 5), np.geomspace(2e8, 2e10, 6))
    N, D = N.ravel(), D.ravel()
    L = (1.69 + 406.4 / N ** 0.34 + 410.7 / D ** 0.28) * np.exp(rng.normal(0, 0.005, N.size))
    df = pd.DataFrame({"run_id": range(N.size), "total_params": N, "tokens": D, "flops": 6 * N * D,
                       "final_val_loss": L, "status": "ok"})
    df.loc[3, "status"] = "diverged"
    path = tmp_path_factory.mktemp("runs") / "runs.csv"
    df.to_csv(path, index=False)
    return path


def test_fit_json_out_plot(runs_csv, tmp_path):
    out, plot = tmp_path / "fit.json", tmp_path / "fit.html"
    r = run_cli("fit", runs_csv, "--n-col", "total_params", "--d-col", "tokens", "--loss-col", "final_val_loss",
                "--grid", "small", "--bootstrap", "40", "--workers", "1", "--holdout-top-compute", "0.2",
                "--budget", "1e21", "--out", out, "--plot", plot, "--json", timeout=300)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    for k in ("E", "A", "B", "alpha", "beta", "ci", "n_rows", "n_dropped", "objective", "converged", "grad_norm",
              "warnings", "holdout", "at_budget"):
        assert k in d, k
    assert set(d["ci"]) == {"E", "A", "B", "alpha", "beta"} and all(len(v) == 2 for v in d["ci"].values())
    assert set(d["holdout"]) >= {"n_fit", "n_heldout", "max_abs_rel_error", "mean_abs_rel_error",
                                 "frac_inside_interval", "goal"}
    assert d["n_dropped"] == 1 and d["n_rows"] == 29 - d["holdout"]["n_heldout"] == d["holdout"]["n_fit"]
    assert d["alpha"] == pytest.approx(0.34, abs=0.05)
    saved = json.loads(out.read_text())
    assert saved["approach"] == 3 and len(saved["bootstrap"]["samples"]) == 40
    assert saved["meta"]["data_sha256"] and saved["meta"]["n_col"] == "total_params"
    html = plot.read_text()
    assert "scaleplan" in html[:2000] and "plotly" in html.lower()


def test_fit_human_output_and_flops_col(runs_csv):
    r = run_cli("fit", runs_csv, "--n-col", "total_params", "--flops-col", "flops", "--loss-col", "final_val_loss",
                "--grid", "small")
    assert r.returncode == 0, r.stderr
    assert "alpha" in r.stdout and "converged: True" in r.stdout


def test_fit_approach2(tmp_path, shared_data):
    pts = shared_data / "external/porian2024_isoflop_points.csv"
    df = pd.read_csv(pts)
    one = tmp_path / "one.csv"
    df[df.config == "rw/tuned/short/const/standard/val"].to_csv(one, index=False)
    r = run_cli("fit", one, "--n-col", "N", "--flops-col", "flops", "--loss-col", "loss", "--approach", "2",
                "--window", "5", "--bootstrap", "30", "--json", "--plot", tmp_path / "iso.html")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert {"a", "b", "optima", "ci"} <= set(d) and len(d["optima"]) == 12
    assert all(("refused" in o) for o in d["optima"])
    assert (tmp_path / "iso.html").exists()


@pytest.mark.parametrize("setup,args,match", [
    ("nan", [], "rows"),
    ("neg", [], "must be > 0"),
    ("few", [], "at least 7"),
    ("empty", [], "empty"),
    ("json", [], "extension"),
    ("ok", ["--loss-col", "nope"], "lacks column"),
    ("ok", ["--plot", "x.png"], "HTML"),
])
def test_bad_input_exits_2_one_line(runs_csv, tmp_path, setup, args, match):
    df = pd.read_csv(runs_csv)
    path = tmp_path / "r.csv"
    if setup == "nan":
        df.loc[5, "final_val_loss"] = np.nan
    elif setup == "neg":
        df.loc[2, "tokens"] = -5
    elif setup == "few":
        df = df.iloc[:6]
    if setup == "empty":
        path.write_text("")
    elif setup == "json":
        path = tmp_path / "r.json"
        path.write_text("{}")
    else:
        df.to_csv(path, index=False)
    base = ["fit", path, "--n-col", "total_params", "--d-col", "tokens", "--loss-col", "final_val_loss",
            "--grid", "small", "--out", tmp_path / "fit.json"]
    if "--loss-col" in args:
        base = base[:6] + base[8:]
    r = run_cli(*base, *args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and match in lines[0], r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "fit.json").exists()


def test_help():
    r = run_cli("fit", "--help")
    assert r.returncode == 0 and "--holdout-top-compute" in r.stdout and "--alpha-eq-beta" in r.stdout
