"""`scaleplan optimal` end to end through the real entry point."""
from __future__ import annotations

import json

import numpy as np
import pytest

from planner.io import write_json
from planner.laws import DEFAULT_LAW, PRESETS


def test_flops_json(cli):
    r = cli("optimal", "--flops", "1e22", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    ref = PRESETS[DEFAULT_LAW].optimal(1e22)
    assert out["N"] == pytest.approx(ref.N) and out["D"] == pytest.approx(ref.D)
    assert out["units"]["loss"] == "nats" and out["law"] == DEFAULT_LAW == "besiroglu2024"


def test_target_loss_with_options_and_plot(cli, tmp_path):
    html = tmp_path / "opt.html"
    r = cli("optimal", "--law", "besiroglu2024", "--flops", "1e23", "--inference-tokens", "2e12",
            "--unique-tokens", "1e11", "--plot", str(html), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["inference_aware"]["N"] < out["N"]
    assert out["inference_aware"]["savings_flops"] > 0
    assert out["data_constrained"]["epochs"] > 1 and out["data_constrained"]["loss_penalty"] > 0
    assert html.exists() and "plotly" in html.read_text()[:5000].lower()
    r = cli("optimal", "--target-loss", "2.1")
    assert r.returncode == 0 and "nats" in r.stdout and "FLOPs" in r.stdout and "params" in r.stdout


def test_fit_json_law_with_ci(cli, tmp_path):
    rng = np.random.default_rng(0)
    samples = np.array([1.69, 406.4, 410.7, 0.34, 0.28]) * np.exp(rng.normal(0, 0.02, (50, 5)))
    fit = write_json(tmp_path / "fit.json", {"approach": 3, "E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34,
                                             "beta": 0.28, "bootstrap": {"n": 50, "samples": samples.tolist()},
                                             "meta": {"source": "runs.csv"}})
    r = cli("optimal", "--law", str(fit), "--flops", "1e21", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["ci"]["N"][0] < out["N"] < out["ci"]["N"][1]
    r = cli("optimal", "--law", str(fit), "--flops", "1e21")
    assert "95% CI" in r.stdout


def test_list_laws(cli):
    r = cli("optimal", "--list-laws", "--json")
    assert r.returncode == 0
    names = {x["name"] for x in json.loads(r.stdout)["laws"]}
    assert {"hoffmann2022", "besiroglu2024"} <= names


@pytest.mark.parametrize("argv, needle", [
    (["--law", "nope", "--flops", "1e20"], "unknown law"),
    (["--target-loss", "1.5"], "unreachable"),
    (["--flops=-1e20"], "positive"),
    (["--flops", "-1e20"], "--flops"),
    (["--flops", "1e20", "--target-loss", "2"], "not allowed"),
    ([], "--flops"),
    (["--target-loss", "2.2", "--unique-tokens", "1e9"], "needs --flops"),
    (["--law", "{bad}/fit.json", "--flops", "1e20"], "lacks"),
    (["--flops", "1e20", "--plot", "{bad}/fit.json/x.html"], "is a file"),
])
def test_bad_input_one_line_exit_2(cli, tmp_path, argv, needle):
    (tmp_path / "fit.json").write_text('{"E": 1.7}')
    argv = [a.replace("{bad}", str(tmp_path)) for a in argv]
    r = cli("optimal", *argv)
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0]
    assert "Traceback" not in r.stderr


def test_help(cli):
    r = cli("optimal", "--help")
    assert r.returncode == 0 and "--target-loss" in r.stdout and "--inference-tokens" in r.stdout
