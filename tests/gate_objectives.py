"""Test-only objectives for the quality-gate tests (loaded by path via the hidden --objective flag).

``bowl_all`` stands in for a proxy run whose optimum the test knows: a quadratic bowl in every
sampled hyperparameter (log scale where the search is log-uniform), centred inside the search
ranges of proxy_train/sweep_space.py, with the optimal log2 LR at ``-9 + 0.1 * log2(width / 32)``
(0.2 octave of drift from width 32 to 128, about the μP drift notes/mup-and-sweeps.md §4.5
measured). A quadratic in log2 LR makes the transfer check's 3-point parabola exact, so the drift
it records is known: 0.2 octave for widths 32..128. No torch, no sleep.
"""
import json
import math

CENTRE = {"init_std": 0.02, "alpha_out": 1.0, "alpha_in": 2.0}  # log-uniform in SPACE
WARMUP_CENTRE = 0.08


def best_log2_lr(width: int) -> float:
    return -9.0 + 0.1 * math.log2(width / 32)


def bowl_all(ctx):
    hp = ctx.hp
    loss = 2.0 + 0.05 * (math.log2(hp["lr"]) - best_log2_lr(ctx.width)) ** 2
    loss += sum(0.02 * math.log2(hp[k] / c) ** 2 for k, c in CENTRE.items())
    loss += 2.0 * (hp["warmup_frac"] - WARMUP_CENTRE) ** 2
    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    for k in range(1, 5):
        ctx.report(k * 25, loss + 0.5 / k)
    (ctx.run_dir / "run.json").write_text(json.dumps({"status": "ok", "final_val_loss": loss}))
    return loss
