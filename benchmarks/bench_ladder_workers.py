"""The ladder work queue at 1 and 2 worker processes on this machine: wall time and efficiency.

Each setting enqueues the same ladder in a fresh study (journal file storage) and drains it with
``scaleplan ladder --worker --workers N`` (N processes, one torch thread each); wall time runs from
the worker command's start to its end (process start-up, claiming, training, runs.csv rebuild).
Efficiency = T(1) / (N x T(N)) (1.0 = perfect scaling). Cosine schedule by default: one task per
point, so two workers stay balanced (a WSD ladder has one task per size, and the largest dominates).
Goal: efficiency >= 0.8 at 2 workers on an otherwise idle 2-core machine.

    .venv/bin/python benchmarks/bench_ladder_workers.py [--data DIR --hparams FILE] [--out /tmp/bench_ladder_workers]

Without ``--data`` a byte-level corpus of 0.3 MB is prepared under --out (vocab 320). The ladders
are also checked to give the same runs.csv losses whatever the worker count.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HPARAMS = {"parameterization": "mup", "base_width": 32, "base_depth": 2, "base_head_dim": 8, "lr": 0.01,
           "init_std": 0.02, "alpha_in": 1.0, "alpha_out": 1.0, "warmup_frac": 0.05, "weight_decay": 0.0,
           "vocab_size": 320}


def _cli(*args: str) -> float:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "scaleplan.cli", *args], cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: scaleplan {' '.join(args)}\n{r.stderr[-3000:]}")
    return time.perf_counter() - t0


def _inputs(args) -> tuple[str, str]:
    out = Path(args.out)
    if args.data:
        return args.data, args.hparams
    data = out / "data"
    if not (data / "meta.json").exists():
        _cli("data", "prepare", "--out", str(data), "--tokenizer", "bytes", "--max-mb", "0.3")
    hp = out / "hparams.yaml"
    import yaml

    hp.write_text(yaml.safe_dump(HPARAMS))
    return str(data), str(hp)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data")
    p.add_argument("--hparams")
    p.add_argument("--out", default="/tmp/bench_ladder_workers")
    p.add_argument("--sizes", default="32:2,48:2,64:2")
    p.add_argument("--tokens-per-param", default="4,8")
    p.add_argument("--schedule", default="cosine", choices=("cosine", "wsd"))
    p.add_argument("--batch", default="8")
    p.add_argument("--seq-len", default="64")
    p.add_argument("--workers", default="1,2")
    args = p.parse_args(argv)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    data, hp = _inputs(args)
    ladder = ["--sizes", args.sizes, "--tokens-per-param", args.tokens_per_param, "--schedule", args.schedule,
              "--batch", args.batch, "--seq-len", args.seq_len]
    import pandas as pd

    rows, losses = [], {}
    for n in [int(w) for w in args.workers.split(",")]:
        study = Path(args.out) / f"w{n}"
        shutil.rmtree(study, ignore_errors=True)
        _cli("ladder", "--study", str(study), "--data", data, "--hparams", hp, *ladder, "--enqueue")
        wall = _cli("ladder", "--study", str(study), "--worker", "--workers", str(n), "--device", "cpu",
                    "--no-check", *(["--oversubscribe"] if n > (os.cpu_count() or 1) else []))
        df = pd.read_csv(study / "runs.csv")
        losses[n] = df.set_index("run_id")["final_val_loss"]
        rows.append({"workers": n, "wall_s": wall, "points": len(df), "train_s": float(df["wall_time_s"].sum())})
    t1 = next(r["wall_s"] for r in rows if r["workers"] == 1)
    for r in rows:
        r["speedup"] = t1 / r["wall_s"]
        r["efficiency"] = t1 / (r["workers"] * r["wall_s"])
    same = all(losses[n].equals(losses[rows[0]["workers"]]) for n in losses)
    print(f"ladder: sizes {args.sizes}, tokens/param {args.tokens_per_param}, {args.schedule}, "
          f"batch {args.batch} x seq {args.seq_len}; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    print(f"{'workers':>8} {'points':>7} {'wall s':>8} {'train s':>8} {'speedup':>8} {'efficiency':>10}")
    for r in rows:
        print(f"{r['workers']:>8} {r['points']:>7} {r['wall_s']:>8.1f} {r['train_s']:>8.1f} {r['speedup']:>8.2f} "
              f"{r['efficiency']:>10.2f}")
    print(f"same losses at every worker count: {same}")
    print(json.dumps({"rows": rows, "same_losses": same}))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
