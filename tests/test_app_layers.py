"""The Lazy layers page (app/views/layers.py) with Streamlit's AppTest: it draws the per-layer
attention diagnostic recorded in run.json, works with no study, and a malformed record is one
error box that leaves the other runs drawn."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from conftest import ROOT  # noqa: E402

MAIN = str(ROOT / "app" / "main.py")
PAGE = "views/layers.py"


def _layer(i: int, row_max: float, eff: float) -> dict:
    return {"layer": i, "row_max": row_max, "frac_rows_concentrated": float(row_max >= 0.9),
            "first_token_mass": row_max, "top_column_mass": row_max, "effective_rank": eff,
            "approx_rank": max(1, int(eff)), "heads": []}


def _run(folder, layers, lazy=()):
    folder.mkdir(parents=True)
    block = {"n_sequences": 4, "seq_len": 128, "min_keys": 8, "lazy_layers": list(lazy), "layers": layers}
    (folder / "run.json").write_text(json.dumps({"status": "ok", "run_id": folder.name, "attention_diagnostic": block}))


@pytest.fixture
def studies(tmp_path, monkeypatch):
    root = tmp_path / "studies"
    _run(root / "inh" / "records" / "ref", [_layer(0, 0.2, 30.0), _layer(1, 0.5, 12.0), _layer(2, 0.95, 1.3)], [2])
    _run(root / "inh" / "records" / "small", [_layer(0, 0.25, 28.0)])
    (root / "inh" / "records" / "old").mkdir()
    (root / "inh" / "records" / "old" / "run.json").write_text(json.dumps({"status": "ok"}))  # no diagnostic: skipped
    (root / "inh" / "study.yaml").write_text("name: inh\n")
    monkeypatch.setenv("SCALEPLAN_STUDIES", str(root))
    return root


def _chart(at: AppTest, key: str) -> dict:
    for c in at.get("plotly_chart"):
        if c.proto.id.endswith(f"-{key}"):
            return json.loads(c.proto.spec)
    raise AssertionError(f"no chart {key}")


def test_page_draws_the_recorded_layers(studies):
    at = AppTest.from_file(MAIN, default_timeout=60).run()
    at.sidebar.selectbox[0].set_value("inh").run()
    at.switch_page(PAGE).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    fig = _chart(at, "layers_row_max")
    traces = {t["name"]: t for t in fig["data"]}
    assert set(traces) == {"inh/records/ref", "inh/records/small"}
    assert traces["inh/records/ref"]["y"] == [0.2, 0.5, 0.95] and traces["inh/records/ref"]["x"] == [0, 1, 2]
    assert [t["y"] for t in _chart(at, "layers_eff_rank")["data"] if t["name"] == "inh/records/ref"] == [[30.0, 12.0, 1.3]]
    assert len(at.dataframe[0].value) == 4
    assert any("inh/records/ref: [2]" in c.value for c in at.caption)


def test_page_without_study_and_with_a_malformed_record(studies, tmp_path, monkeypatch):
    (studies / "inh" / "records" / "bad").mkdir()
    (studies / "inh" / "records" / "bad" / "run.json").write_text(json.dumps({"attention_diagnostic": {"layers": [1]}}))
    at = AppTest.from_file(MAIN, default_timeout=60).run()
    at.switch_page(PAGE).run()  # no study chosen: every study's runs
    assert not at.exception
    assert len(at.error) == 1 and "attention_diagnostic" in at.error[0].value
    assert len(_chart(at, "layers_row_max")["data"]) == 2
    monkeypatch.setenv("SCALEPLAN_STUDIES", str(tmp_path / "absent"))
    at = AppTest.from_file(MAIN, default_timeout=60).run()
    at.switch_page(PAGE).run()
    assert not at.exception and not at.error and "No run.json" in at.info[0].value
