"""Test-only objectives for sweep fault tests (loaded by path via the hidden --objective flag).

``slow_bowl`` is a stand-in for a proxy run whose timing the tests control: it "trains" for
``SWEEP_FAKE_SLEEP`` seconds (env, default 0.05) in 4 reported steps and returns a bowl in
log2(lr) with its minimum at log2 lr = -9 (the μP optimum of notes §4.5), so samplers have
something real to find. It writes ``run.json`` like the trainer so the run folders are populated.
"""
import json
import math
import os
import time


def slow_bowl(ctx):
    sleep = float(os.environ.get("SWEEP_FAKE_SLEEP", "0.05"))
    x = math.log2(ctx.hp["lr"])
    final = 2.0 + 0.05 * (x + 9.0) ** 2 + 0.01 * abs(math.log(ctx.hp["init_std"] / 0.02))
    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    (ctx.run_dir / "started").write_text(str(os.getpid()))
    for k in range(1, 5):
        time.sleep(sleep / 4)
        ctx.report(k * 25, final + 1.0 / k)
    (ctx.run_dir / "run.json").write_text(json.dumps({"status": "ok", "final_val_loss": final}))
    return final


def diverge_high_lr(ctx):
    """Like ``slow_bowl`` but "diverges" (NaN loss) when lr > 2^-7, as a too-large LR does."""
    if ctx.hp["lr"] > 2.0 ** -7:
        ctx.report(25, float("nan"))
    return slow_bowl(ctx)


def always_crash(ctx):
    """A broken objective: every trial raises."""
    raise RuntimeError("simulated crash in the proxy run")
