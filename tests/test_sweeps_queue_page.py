"""The dashboard's Sweeps page shows a ladder work queue's status (issue 17 item 5): tasks done /
running (with the worker's host) / failed / queued, read from the queue's storage
(proxy_train.ladder_queue_results.queue_status), here a journal file in the study folder with one
trial in each state, made through Optuna's own API as the workers make them."""
from __future__ import annotations

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from app_fixtures import make_study  # noqa: E402
from conftest import ROOT  # noqa: E402


def _queue_in_each_state(study) -> None:
    from optuna.trial import TrialState

    from proxy_train.ladder_queue import FAIL_ATTR, RUNS_ATTR, TASK_ATTR, WORKER_ATTR, claim, open_queue
    from proxy_train.sweep_storage import journal_url

    q = open_queue(study, journal_url(study), create=True, heartbeat_interval=None)
    for key in ("wsd-64", "wsd-128", "cos-256", "cos-512"):
        q.enqueue_trial({"task": key}, user_attrs={TASK_ATTR: key}, skip_if_exists=False)
    done, running, failed = claim(q), claim(q), claim(q)
    done.set_user_attr(RUNS_ATTR, {"runs/a": {"final_val_loss": 3.25, "tokens": 1000}})
    q.tell(done, 3.25)
    running.set_user_attr(WORKER_ATTR, "node-7:4242")
    running.set_user_attr("worker_host", "node-7")
    failed.set_user_attr(FAIL_ATTR, "error: RuntimeError: out of memory")
    q.tell(failed, state=TrialState.FAIL)


def test_sweeps_page_shows_the_ladder_queue(tmp_path, monkeypatch):
    root = tmp_path / "studies"
    study = make_study(root)
    _queue_in_each_state(study)
    monkeypatch.setenv("SCALEPLAN_STUDIES", str(root))
    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=60).run()
    at.switch_page("views/sweeps.py").run()
    assert not at.exception, [e.value for e in at.exception]
    metrics = {m.label: m.value for m in at.metric}
    assert [metrics[f"Ladder tasks {k}"] for k in ("done", "running", "failed", "queued")] == ["1", "1", "1", "1"]
    table = next(d.value for d in at.dataframe if "state" in d.value.columns)
    rows = {r["state"]: r for r in table.to_dict("records")}
    assert rows["done"]["task"] == "wsd-64" and "loss 3.2500" in rows["done"]["detail"]
    assert rows["running"]["task"] == "wsd-128" and rows["running"]["worker"] == "node-7:4242"
    assert rows["failed"]["detail"] == "error: RuntimeError: out of memory" and rows["queued"]["task"] == "cos-512"
    assert metrics["Complete trials"] == "12"  # the folder's sweep is still shown beside its queue


def test_a_recorded_storage_that_needs_a_password_is_a_clear_message(tmp_path, monkeypatch):
    root = tmp_path / "studies"
    study = make_study(root)
    text = (study / "study.yaml").read_text() if (study / "study.yaml").exists() else ""
    import yaml

    rec = yaml.safe_load(text) or {}
    rec["ladder_queue"] = {"storage": "postgresql://u:***@db/x", "queue": "demo-ladder"}
    (study / "study.yaml").write_text(yaml.safe_dump(rec))
    monkeypatch.setenv("SCALEPLAN_STUDIES", str(root))
    monkeypatch.delenv("SCALEPLAN_SWEEP_STORAGE", raising=False)
    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=60).run()
    at.switch_page("views/sweeps.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("needs a password" in e.value and "SCALEPLAN_SWEEP_STORAGE" in e.value for e in at.error)
