"""`scaleplan curve-law` on a tiny trained ladder, and its bad inputs (exit 2, one line, nothing written)."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import run_cli, tiny_proxy_inputs


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("curve_law")
    data, hparams = tiny_proxy_inputs(root)
    study = root / "study"
    r = run_cli("ladder", "--study", study, "--data", data, "--hparams", hparams, "--sizes", "16:1,32:1",
                "--tokens-per-param", "3,6", "--batch", "8", "--seq-len", "32", "--workers", "1", "--no-check",
                "--evals-per-run", "8")
    assert r.returncode == 0, r.stderr[-2000:]
    return study


def test_evals_per_run_reaches_the_curves(tiny_study):
    """--evals-per-run K: K evaluations over each size's smallest budget (start and end included)."""
    for run in (tiny_study / "runs").rglob("run.json"):
        rec = json.loads(run.read_text())
        assert len(rec["curve"]["val"]) >= 8, (run, len(rec["curve"]["val"]))


def test_curve_law_on_a_tiny_ladder(tiny_study, tmp_path):
    out = tmp_path / "cl" / "curve_law.json"
    r = run_cli("curve-law", "--study", tiny_study, "--predict-tokens-per-param", "3,4,6,12", "--out", out, "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout)
    assert json.loads(out.read_text()) == res
    assert set(res["sizes"]) == {"d16-L1", "d32-L1"}
    for law in res["sizes"].values():
        assert law["A"] > 0 and 0 <= law["lam"] < 1 and law["fit"]["residuals"]["val"]["n"] > 0
    table = pd.read_csv(tmp_path / "cl" / "curve_law_runs.csv")
    assert len(table) == 8 and set(table["predicted_by"].str[:9]) == {"curve law"}
    measured = pd.read_csv(tiny_study / "runs.csv").set_index(["size", "tokens"])["final_val_loss"]
    same = [(row["final_val_loss"], measured[(row["size"], row["tokens"])]) for _, row in table.iterrows()
            if (row["size"], row["tokens"]) in measured.index]
    assert len(same) == 4  # the trained budgets (3 and 6 tokens/param) land on the same token counts
    for pred, meas in same:  # cosine predicted from WSD curves: within 10 % of the WSD losses measured
        assert pred == pytest.approx(meas, rel=0.1)
    big = table[table["size"] == "d32-L1"].sort_values("tokens")["final_val_loss"].to_numpy()
    assert (big[1:] < big[:-1]).all()  # more tokens, lower predicted loss
    assert (tmp_path / "cl" / "curve_law.html").read_text().count("plotly") > 0
    # the predicted table is a runs table that `scaleplan fit` reads
    f = run_cli("fit", tmp_path / "cl" / "curve_law_runs.csv", "--n-col", "non_embedding_params", "--d-col", "tokens",
                "--loss-col", "final_val_loss", "--grid", "small", "--no-backtest", "--json")
    assert f.returncode == 0, f.stderr[-1000:]
    assert json.loads(f.stdout)["n_rows"] == 8


@pytest.mark.parametrize("args, words", [
    (["--study", "/nonexistent/study"], "not a folder"),
    (["--study", "{tmp}"], "runs.csv not found"),
    (["--study", "{tmp}", "--lam", "1.2"], "[0, 1)"),
    (["--study", "{tmp}", "--predict-tokens-per-param", "4,x"], "comma-separated"),
    (["--study", "{tmp}", "--schedule", "linear"], "invalid choice"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, args, words):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    r = run_cli("curve-law", *args)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert words in r.stderr
    assert not list(tmp_path.iterdir())  # nothing written
