"""The Plan page's data mixture box and its Data repetition table (app/data_view.py), in AppTest.

The table must carry the plan's own ``data_repetition`` numbers: epochs = tokens x weight / unique
tokens per source (Muennighoff et al. 2023's repetition count), checked against the page's planned
tokens; a bad mixture is an error next to an unchanged plan, never an exception.
"""
from __future__ import annotations

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from conftest import ROOT  # noqa: E402

MAIN = str(ROOT / "app" / "main.py")
MIXTURE = ("- {prefix: /data/web_text_document, weight: 0.75, unique_tokens: 2.0e+10}\n"
           "- {prefix: /data/code_text_document, weight: 0.25, unique_tokens: 1.0e+12}\n")


@pytest.fixture
def at(tmp_path, monkeypatch):
    monkeypatch.setenv("SCALEPLAN_STUDIES", str(tmp_path / "absent"))
    app = AppTest.from_file(MAIN, default_timeout=60).run()
    app.number_input(key="flops").set_value(1e22).run()
    return app


def _repetition_frame(app):
    heads = [h.value for h in app.subheader]
    assert "Data repetition" in heads, heads
    frames = [d.value for d in app.dataframe if "epochs" in d.value.columns]
    assert len(frames) == 1
    return frames[0]


def test_mixture_gives_epochs_per_source(at):
    from planner.plan import Budget, PlanRequest, make_plan
    from planner.plan.data_mixture import read_mixture

    assert "Data repetition" not in [h.value for h in at.subheader]  # no mixture: no section
    at.text_area(key="mixture").set_value(MIXTURE).run()
    assert not at.exception, [e.value for e in at.exception]
    df = _repetition_frame(at).set_index("source")
    assert list(df.index) == ["/data/web_text_document", "/data/code_text_document"]
    web = df.loc["/data/web_text_document"]
    # the same request outside the app: the page must show this plan's counts
    plan = make_plan(PlanRequest(budget=Budget.from_options(flops=1e22, gpu="H100-SXM"), law="besiroglu2024",
                                 gpu="H100-SXM", data_sources=read_mixture([
                                     {"prefix": "/data/web_text_document", "weight": 0.75, "unique_tokens": 2e10},
                                     {"prefix": "/data/code_text_document", "weight": 0.25, "unique_tokens": 1e12}])))
    expected = plan.tokens * 0.75 / 2e10
    assert float(web["epochs"]) == pytest.approx(expected, rel=1e-3)
    code = df.loc["/data/code_text_document"]
    assert float(code["epochs"]) == pytest.approx(plan.tokens * 0.25 / 1e12, rel=1e-3)
    # the repeated source costs loss; one read less than once repeats nothing
    assert float(web["loss penalty (nats)"]) > 0 and float(code["loss penalty (nats)"]) == 0.0
    assert expected > 4 and any("repeated" in w.value for w in at.warning)  # past ~4 epochs: warned


@pytest.mark.parametrize("text, words", [("- {prefix: a, weight: -1}", "weight"), ("[unclosed", "not valid YAML"),
                                          ("&a [*a]", "refused"),
                                          ("- {prefix: a, weight: 1, unique_tokens: 1e11}", "write 1e+11")])
def test_bad_mixture_is_an_error_beside_the_plan(at, text, words):
    at.text_area(key="mixture").set_value(text).run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert any(e.startswith("Data mixture not used:") and words in e for e in errors), errors
    assert at.metric and "Data repetition" not in [h.value for h in at.subheader]
