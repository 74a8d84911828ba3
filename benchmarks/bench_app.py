"""Dashboard responsiveness: time of one plan recompute and of each page's render.

Goals (issue 8): recomputing a plan <= 100 ms (the Plan page recomputes on every input change);
first render of a page <= 5 s on this machine. Measured side by side in one run:

* ``make_plan`` for budgets 1e20..1e25 FLOPs (published law; and a fitted law with bootstrap samples
  + μP hparams, the heavier path), median and max of repeats;
* every page rendered by Streamlit's AppTest (in-process script run, no browser): first (cold:
  imports, caches empty) and second (warm) run.

Usage: .venv/bin/python benchmarks/bench_app.py [--repeats 7]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def _ms(f, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        out.append(1e3 * (time.perf_counter() - t))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} "
          "(other jobs share this machine)")

    from app_fixtures import make_study
    from planner.plan import Budget, PlanRequest, make_plan

    tmp = Path(tempfile.mkdtemp(prefix="bench_app_"))
    study = make_study(tmp / "studies")
    make_plan(PlanRequest(budget=Budget.from_flops(1e22)))  # imports
    print("\nmake_plan recompute (ms): median / max over repeats  [goal <= 100 ms]")
    for C in (1e20, 1e22, 1e24, 1e25):
        plain = _ms(lambda: make_plan(PlanRequest(budget=Budget.from_flops(C))), args.repeats)
        fitted = _ms(lambda: make_plan(PlanRequest(budget=Budget.from_flops(C), law=str(study / "fit.json"),
                                                   hparams=str(study / "hparams.yaml"))), args.repeats)
        print(f"  C = {C:.0e}: published law {statistics.median(plain):6.1f} / {max(plain):6.1f}   "
              f"fitted law + μP hparams {statistics.median(fitted):6.1f} / {max(fitted):6.1f}")

    from streamlit.testing.v1 import AppTest

    print("\npage render via AppTest (s): first (cold) / second (warm)  [goal first <= 5 s]")
    for label, root in (("with study", tmp / "studies"), ("no study", tmp / "none")):
        os.environ["SCALEPLAN_STUDIES"] = str(root)
        at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=120)
        for page in ("views/plan.py", "views/fit.py", "views/sweeps.py", "views/coord.py"):
            if page != "views/plan.py":
                at.switch_page(page)
            t = time.perf_counter()
            at.run()
            cold = time.perf_counter() - t
            t = time.perf_counter()
            at.run()
            warm = time.perf_counter() - t
            bad = f"  EXCEPTION {at.exception[0].value}" if at.exception else ""
            print(f"  {label:10s} {page:16s} {cold:5.2f} / {warm:5.2f}{bad}")


if __name__ == "__main__":
    main()
