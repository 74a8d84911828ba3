"""Speed of recomputing a plan (`make_plan`), against the dashboard's 100 ms budget, side by side.

The dashboard recomputes the whole plan (allocation, shape search, batch/LR, μP, layout search,
memory, time, cost, warnings) on every widget change, so one warm recompute must take <= 100 ms.
Each scenario is timed warm (imports done, first call discarded) over 20 calls (FLOPs budgets
change by 1.3% per call, as a slider would); the line
prints median and worst time and the ratio budget / median (> 1 means within budget).

Run:  .venv/bin/python benchmarks/bench_plan.py
"""
from __future__ import annotations

import statistics
import time

BUDGET_MS = 100.0

SCENARIOS = [
    ("1e22 FLOPs, 16 H100 auto", dict(budget=1e22)),
    ("1e24 FLOPs, 1024 H100 auto", dict(budget=1e24, n_gpus=1024)),
    ("GPU-hours 1e5, μP hparams", dict(budget=None, hparams=dict(base_width=256, lr=6e-3), gpu_hours=1e5)),
    ("preset llm-jp-3-1.8b (pinned layout)", dict(budget=None, preset="llm-jp-3-1.8b")),
    ("preset llama-2-70b, 512 GPUs auto layout", dict(budget=None, preset="llama-2-70b", n_gpus=512)),
]


def main() -> None:
    t0 = time.perf_counter()
    from planner.plan import Budget, PlanRequest, make_plan

    print(f"import planner.plan: {(time.perf_counter() - t0) * 1e3:.0f} ms (once per process)")
    for name, kw in SCENARIOS:
        kw = dict(kw)
        if "gpu_hours" in kw:
            kw["budget"] = Budget.from_gpu_hours(kw.pop("gpu_hours"), "h100")
        make_plan(PlanRequest(**kw))  # warm-up (lazy imports)
        times = []
        for i in range(20):
            if isinstance(kw.get("budget"), float):  # a new budget each call: no cache can answer
                kw["budget"] = kw["budget"] * 1.013
            request = PlanRequest(**kw)
            t = time.perf_counter()
            make_plan(request)
            times.append((time.perf_counter() - t) * 1e3)
        med = statistics.median(times)
        print(f"{name:<44} median {med:7.2f} ms  worst {max(times):7.2f} ms  "
              f"budget/median {BUDGET_MS / med:6.1f}x")


if __name__ == "__main__":
    main()
