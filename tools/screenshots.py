"""Screenshots of every dashboard page on the real bundled studies (for the README).

    .venv/bin/python tools/screenshots.py [--studies studies] [--out docs/screenshots]

Starts `scaleplan app` exactly as a user would (127.0.0.1, a free port), drives Debian's headless
Chromium with Playwright (never `playwright install`), saves one full-page PNG per page and stops
the server. The end-to-end test (tests/test_app_e2e.py) checks behaviour; this only takes pictures.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PAGES = [("Plan", "plan.png", "Compute-optimal allocation"), ("Scaling fit", "fit.png", "Fitted law"),
         ("Sweeps", "sweeps.png", "Best trial"), ("Coordinate check", "coord_check.png", "PASS")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--studies", default=str(ROOT / "studies"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from playwright.sync_api import sync_playwright

    from app.server import running_app

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with running_app(Path(args.studies)) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pg = browser.new_context(viewport={"width": 1500, "height": 1800}).new_page()
        pg.set_default_timeout(60_000)
        pg.goto(url)
        for link, name, marker in PAGES:
            if link != "Plan":
                pg.get_by_role("link", name=link).click()
            pg.get_by_text(marker, exact=False).first.wait_for()
            pg.wait_for_timeout(500)
            pg.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')")
            pg.wait_for_timeout(1500)  # plotly finishes drawing
            pg.screenshot(path=str(out / name), full_page=True)
            print(f"wrote {out / name}")
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
