"""Benchmark: batched 4,500-start Approach-3 fit vs a plain per-start scipy L-BFGS-B loop, and the
1,000-resample bootstrap, on the Chinchilla data (Epoch 2024 SVG extraction, 5 highest-loss rows
dropped -> 240 rows). Prints times measured side by side in this run and their ratio.

    .venv/bin/python benchmarks/bench_fit.py [--subset 300] [--bootstrap 1000] [--workers 2]

The scipy loop is timed on a random subset of the 4,500 starts (tight tolerances gtol 1e-12,
ftol 1e-15 so that it reaches the same optimum, analytic gradient) and extrapolated linearly.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np


def main() -> None:
    from scipy.optimize import minimize

    from planner.fit import ChinchillaFitter, grid_starts
    from planner.fit_solver import _objective
    from planner.runs import load_runs

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subset", type=int, default=300, help="scipy starts actually timed (default 300)")
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/external/"
                                          "chinchilla_epoch2024_svg_extracted.csv"))
    args = ap.parse_args()

    print(f"machine: {platform.processor() or platform.machine()}, nproc={os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} "
          "(shared machine: other jobs may run)")
    df = load_runs(args.data, n_col="Model Size", loss_col="loss", flops_col="Training FLOP")

    t0 = time.perf_counter()
    f = ChinchillaFitter(grid="hoffmann", drop_top_loss=5).fit(df["N"], df["D"], df["loss"])
    t_batched = time.perf_counter() - t0
    p = f.params_
    print(f"batched fit, 4,500 starts: {t_batched:.2f} s  alpha={p['alpha']:.6f} beta={p['beta']:.6f} "
          f"objective={f.objective_:.10g} grad_norm={f.grad_norm_:.1e} converged={f.converged_}")

    keep = f.kept_mask_
    x = np.log(df["N"].to_numpy()[keep])
    y = np.log(df["D"].to_numpy()[keep])
    lL = np.log(df["loss"].to_numpy()[keep])
    w = np.ones_like(x)

    def fun(th):
        F, g, _ = _objective(th[None], x, y, lL, w, 1e-3, order=1)
        return float(F[0]), g[0]

    starts = grid_starts("hoffmann")
    rng = np.random.default_rng(0)
    idx = rng.choice(len(starts), size=min(args.subset, len(starts)), replace=False)
    t0 = time.perf_counter()
    results = [minimize(fun, starts[i], jac=True, method="L-BFGS-B",
                        options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 10000}) for i in idx]
    t_sub = time.perf_counter() - t0
    t_scipy = t_sub * len(starts) / len(idx)
    best = min(results, key=lambda r: r.fun)
    same = abs(best.x[3] - p["alpha"]) < 1e-3 and abs(best.x[4] - p["beta"]) < 1e-3
    print(f"scipy L-BFGS-B loop: {t_sub:.2f} s for {len(idx)} random starts -> {t_scipy:.1f} s for 4,500 "
          f"(linear extrapolation); best alpha={best.x[3]:.6f} beta={best.x[4]:.6f} objective={best.fun:.10g}")
    print(f"same optimum (alpha, beta within 1e-3): {same}")
    print(f"speed ratio scipy / batched: {t_scipy / t_batched:.0f}x (goal >= 50x)")

    t0 = time.perf_counter()
    fb = ChinchillaFitter(grid="hoffmann", drop_top_loss=5, bootstrap=args.bootstrap, n_jobs=args.workers,
                          progress=True).fit(df["N"], df["D"], df["loss"])
    t_total = time.perf_counter() - t0
    print(f"fit + {args.bootstrap}-resample bootstrap with {args.workers} workers: {t_total:.2f} s total, "
          f"bootstrap part ~{t_total - t_batched:.2f} s (goal <= 30 s); converged refits "
          f"{fb.bootstrap_converged_frac_:.1%}; alpha 95% CI {np.round(fb.ci_['alpha'], 4).tolist()}, "
          f"beta 95% CI {np.round(fb.ci_['beta'], 4).tolist()}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
