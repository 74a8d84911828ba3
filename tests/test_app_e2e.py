"""End-to-end: the real dashboard server driven by a real headless Chromium (Playwright).

Starts `streamlit run app/main.py` exactly as `scaleplan app` does (127.0.0.1, a free port, a temp
studies folder), waits for /_stcore/health, then: changes the budget and waits for N* and the
memory chart to update, downloads the Megatron launch script and checks its --num-layers against
the plan shown, uploads a bad runs CSV and sees the error, and saves screenshots of every page (to a temp folder;
set SCALEPLAN_SCREENSHOTS=docs/screenshots to refresh the README's pictures). Chromium is the Debian package at /usr/bin/chromium; without it the test skips
(fails in CI with SCALEPLAN_REQUIRE_E2E=1). The server is always killed in teardown.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest

from app_fixtures import make_study
from conftest import ROOT, skip_or_fail

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SHOTS = Path(os.environ.get("SCALEPLAN_SCREENSHOTS") or Path(tempfile.gettempdir()) / "scaleplan-screenshots")
SHOTS = SHOTS if SHOTS.is_absolute() else ROOT / SHOTS


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        skip_or_fail(f"chromium not found at {CHROMIUM} (Debian package `chromium`)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        skip_or_fail("the playwright Python package is not installed")
    from app.server import running_app

    root = tmp_path_factory.mktemp("e2e") / "studies"
    make_study(root)
    log_path = root.parent / "server.log"
    with open(log_path, "w") as log:
        try:
            with running_app(root, log=log, env={"PYTHONPATH": str(ROOT)}) as url:
                yield url
        except RuntimeError as e:
            raise RuntimeError(f"{e}: {log_path.read_text()[-2000:]}") from None


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        ctx = browser.new_context(viewport={"width": 1500, "height": 2400}, accept_downloads=True)
        pg = ctx.new_page()
        pg.set_default_timeout(20_000)
        yield pg
        browser.close()


def _metric(pg, label: str) -> str:
    m = pg.locator('[data-testid="stMetric"]').filter(has=pg.get_by_text(label, exact=True)).first
    return m.locator('[data-testid="stMetricValue"]').inner_text().strip()


def _wait_idle(pg) -> None:
    """Wait until Streamlit has finished the current script run (no 'Running...' indicator)."""
    pg.wait_for_timeout(300)
    pg.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=20_000)


def test_dashboard_end_to_end(server, page):
    pg = page
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.goto(server)
    pg.get_by_text("Compute-optimal allocation", exact=False).first.wait_for()
    # opens on the bundled study with its fitted law; switch to the published Chinchilla law
    law = pg.get_by_role("combobox", name="Scaling law")
    law.click()
    pg.get_by_role("option", name="hoffmann2022 (published)").click()
    _wait_idle(pg)
    n_before = _metric(pg, "N* (params)")

    box = pg.get_by_label("Compute budget C (FLOPs)", exact=True)
    box.fill("1.000e+24")
    box.press("Enter")
    pg.wait_for_function(
        """([before]) => { const m = [...document.querySelectorAll('[data-testid="stMetric"]')]
             .find(e => e.innerText.includes('N* (params)'));
           return m && !m.innerText.includes(before); }""", arg=[n_before])
    _wait_idle(pg)
    n_after = _metric(pg, "N* (params)")
    assert n_after != n_before
    pg.locator('[data-testid="stPlotlyChart"]').first.wait_for()  # the memory chart

    text = pg.locator('[data-testid="stMain"]').inner_text()
    layers = int(re.search(r"(\d+) layers", text).group(1))
    with pg.expect_download() as dl:
        pg.get_by_role("button", name="launch.sh").click()
    script = Path(dl.value.path()).read_text()
    assert re.search(rf"--num-layers\s+'?{layers}'?\b", script), script[:2000]
    assert "plan" in script.lower()  # header with the plan hash
    pg.screenshot(path=str(SHOTS / "plan.png"), full_page=True)

    # Scaling fit: the study's fit, then a bad upload is rejected on the page
    pg.get_by_role("link", name="Scaling fit").click()
    pg.get_by_text("Fitted law", exact=False).first.wait_for()
    _wait_idle(pg)
    pg.screenshot(path=str(SHOTS / "fit.png"), full_page=True)
    pg.get_by_text("Upload your own runs", exact=False).first.click()  # open the expander
    pg.locator('input[type="file"]').set_input_files(
        files=[{"name": "bad.csv", "mimeType": "text/csv", "buffer": b"foo,bar\n1,2\n3,4\n"}])
    pg.get_by_text("Upload rejected", exact=False).first.wait_for()

    pg.get_by_role("link", name="Sweeps").click()
    pg.get_by_text("Best trial", exact=False).first.wait_for()
    _wait_idle(pg)
    pg.screenshot(path=str(SHOTS / "sweeps.png"), full_page=True)

    pg.get_by_role("link", name="Coordinate check").click()
    pg.get_by_text("PASS", exact=False).first.wait_for()
    _wait_idle(pg)
    pg.screenshot(path=str(SHOTS / "coord_check.png"), full_page=True)

    pg.get_by_role("link", name="Lazy layers").click()
    pg.get_by_text("attention degeneracy per layer", exact=False).first.wait_for()
    _wait_idle(pg)
    pg.screenshot(path=str(SHOTS / "lazy_layers.png"), full_page=True)
