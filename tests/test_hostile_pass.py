"""The hostile pass in CI (issue 18): a representative subset of tools/hostile_cases.py, run as real
``scaleplan`` subprocesses through the same classifier as ``tools/hostile_pass.py``, must all be
clean (exit 2 with one line and nothing written, or exit 0 where the input is legal).

The full pass (about a thousand cases, ~8 minutes on two cores) is ``.venv/bin/python
tools/hostile_pass.py --jobs 2``; its totals are in benchmarks/results/hostile_pass.txt.
"""
from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import hostile_cases as hc  # noqa: E402
import hostile_pass as hp  # noqa: E402


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return hp.build_template(tmp_path_factory.mktemp("hostile") / "template")


def test_fast_subset_is_representative():
    fast = [hc.case_by_id(i) for i in hc.FAST_IDS]
    assert 15 <= len(fast) <= 40
    assert {c.group for c in fast} == {"numbers", "paths", "artefacts"}
    commands = {c.argv[0] for c in fast}
    assert {"train", "data", "sweep", "coord-check", "optimal", "export", "plan"} <= commands
    assert len(hc.CASES) >= 310  # the issue's hostile pass tried about 310 cases


def test_table_names_every_case_of_the_issue():
    ids = {c.id for c in hc.CASES}
    for cid in ("data-prepare--vocab=1e9", "train--threads=100000", "sweep-out=dotdot", "train--lr=1e300",
                "train--base-width=1e30", "coord-check--widths=million", "coord-check--head-dim=odd",
                "data-prepare-out=proc", "optimal--flops=tiny", "plan--price=1e308", "train-out=data-folder",
                "fit-out-ok-plot-bad", "train-hparams=readout-no-string", "optimal-law=E-true",
                "optimal-law=deep", "optimal-law=A-bigint", "train-meta=vocab-1e12", "train-data=empty-train-bin",
                "train-data=ids-above-vocab", "export-megatron-plan=d-model-injection",
                "export-torchtitan-plan=seq-len-injection", "train-hparams=alias-bomb", "fit-runs=dup-column"):
        assert cid in ids, cid


@pytest.mark.parametrize("outcome, rc, err, changed, expect", [
    ("clean", 2, "error: bad value\n", [], "refuse"),
    ("not-one-line", 2, "warning\nerror: bad value\n", [], "refuse"),
    ("wrongly-written", 2, "error: bad value\n", ["D"], "refuse"),
    ("accepted", 0, "", [], "refuse"),
    ("clean", 0, "", ["out"], "either"),
    ("traceback", 1, "Traceback (most recent call last):\n", [], "refuse"),
    ("signal", -11, "", [], "refuse"),
    ("hang", None, "", [], "refuse"),
    ("bad-exit", 1, "libgomp: out of memory\n", [], "refuse"),
])
def test_classifier(outcome, rc, err, changed, expect):
    case = hc.Case("x", ("optimal",), expect)
    assert hp.classify(case, rc, "", err, changed) == outcome


def test_fast_subset_is_clean(template, tmp_path):
    t0 = time.monotonic()
    cases = [hc.case_by_id(i) for i in hc.FAST_IDS]
    with ThreadPoolExecutor(2) as pool:
        rows = list(pool.map(lambda c: hp.run_case(c, template, tmp_path, memory_gb=6.0), cases))
    bad = [(r["id"], r["outcome"], r["stderr_last_line"], r["changed"]) for r in rows if r["outcome"] != "clean"]
    assert not bad, bad
    assert time.monotonic() - t0 < 120
