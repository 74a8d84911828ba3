"""The Scaling fit page names the fitting choices a fit.json records (app/views/fit.py
``fit_choice_lines``): a prior on E and a joint fit across data sets, each from a real
`scaleplan fit` of the fixture runs (losses from Besiroglu et al. 2024's law)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from app_fixtures import TRUE, make_study  # noqa: E402
from conftest import ROOT, run_cli  # noqa: E402

FIT = ["--n-col", "total_params", "--d-col", "tokens", "--loss-col", "final_val_loss", "--grid", "small",
       "--no-backtest", "--bootstrap", "5"]


def _captions(root, monkeypatch) -> list[str]:
    monkeypatch.setenv("SCALEPLAN_STUDIES", str(root))
    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=90).run()
    at.switch_page("views/fit.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return [c.value for c in at.caption]


def test_fit_page_names_the_prior_on_E(tmp_path, monkeypatch):
    study = make_study(tmp_path / "studies")
    r = run_cli("fit", study / "runs.csv", *FIT, "--E-prior", "1.8,0.05", "--out", study / "fit.json")
    assert r.returncode == 0, r.stderr[-1500:]
    caps = _captions(tmp_path / "studies", monkeypatch)
    assert any(c.startswith("Prior on E: 1.8 ± 0.05 (Gaussian on log E") for c in caps), caps


def test_fit_page_names_the_joint_fit(tmp_path, monkeypatch):
    study = make_study(tmp_path / "studies")
    runs = pd.read_csv(study / "runs.csv")
    other = runs.copy()  # a second corpus: the same exponents, a floor 0.3 nats higher (Porian rw vs owt2 style)
    other["final_val_loss"] = other["final_val_loss"] + 0.3
    other["run_id"] = other["run_id"] + "_b"
    table = pd.concat([runs.assign(corpus="a"), other.assign(corpus="b")])
    table.to_csv(study / "runs.csv", index=False)
    r = run_cli("fit", study / "runs.csv", *FIT, "--group-by", "corpus", "--group", "b", "--share", "alpha,beta",
                "--out", study / "fit.json", "--json")
    assert r.returncode == 0, r.stderr[-1500:]
    caps = _captions(tmp_path / "studies", monkeypatch)
    line = next((c for c in caps if c.startswith("Joint fit across 2 data sets sharing alpha, beta")), None)
    assert line is not None, caps
    assert "this law is b's" in line and "a: 20 runs" in line and "b: 20 runs" in line
    import json
    fit = json.loads((study / "fit.json").read_text())
    assert fit["E"] == pytest.approx(TRUE["E"] + 0.3, abs=0.15)  # b's floor, not a's
    assert np.isclose(fit["meta"]["groups"]["a"]["alpha"], fit["meta"]["groups"]["b"]["alpha"])  # shared
