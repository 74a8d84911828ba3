"""WSD-branch ladder vs separate cosine runs on the same sizes and budgets, side by side.

Prints the compute each ladder used (6 N_total x tokens actually trained; WSD counts the shared
stable phase once) and the fitted exponents (alpha, beta) with 95% bootstrap intervals.
Goal (Hägele et al. 2024, arXiv:2405.18392): WSD <= 0.6x the compute with overlapping intervals.

    .venv/bin/python benchmarks/bench_ladder.py --data DIR --hparams hparams.yaml [--out /tmp/bench_ladder]

``--data``/``--hparams``: e.g. studies/demo/data and studies/demo/hparams.yaml after ``make demo``.
Resumable (each ladder is a study folder under --out).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT / "studies/demo/data"))
    p.add_argument("--hparams", default=str(ROOT / "studies/demo/hparams.yaml"))
    p.add_argument("--out", default="/tmp/bench_ladder")
    p.add_argument("--sizes", default="16:2,32:2,48:2,64:2,96:2")
    p.add_argument("--tokens-per-param", default="4,6,8,12,16")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--bootstrap", type=int, default=200)
    args = p.parse_args(argv)

    import pandas as pd

    from planner.fit import ChinchillaFitter
    from proxy_train.ladder import load_spec, run_ladder

    results = {}
    for schedule in ("wsd", "cosine"):
        spec = load_spec(data=args.data, hparams=args.hparams, sizes=args.sizes, tokens_per_param=args.tokens_per_param,
                         schedule=schedule, batch=args.batch, seq_len=args.seq_len)
        study = Path(args.out) / schedule
        s = run_ladder(spec, study, workers=args.workers, command=f"benchmarks/bench_ladder.py ({schedule})")
        df = pd.read_csv(study / "runs.csv")
        df = df[df["status"] == "ok"]
        f = ChinchillaFitter(bootstrap=args.bootstrap, seed=0, n_jobs=args.workers).fit(
            df["non_embedding_params"], df["tokens"], df["final_val_loss"])
        results[schedule] = {"compute_used": s["compute_used"], "points": len(df), "wall_s": s["wall_s"],
                             "alpha": f.params_["alpha"], "beta": f.params_["beta"], "E": f.params_["E"],
                             "ci": {k: f.ci_[k] for k in ("alpha", "beta", "E")}, "warnings": f.warnings_}
    w, c = results["wsd"], results["cosine"]
    # the same (size, budget) point under both schedules: final loss difference, WSD minus cosine
    tw = pd.read_csv(Path(args.out) / "wsd" / "runs.csv").set_index(["size", "tokens"])["final_val_loss"]
    tc = pd.read_csv(Path(args.out) / "cosine" / "runs.csv").set_index(["size", "tokens"])["final_val_loss"]
    rel = ((tw - tc) / tc).dropna()
    results["loss_diff"] = {"median_rel": float(rel.median()), "max_abs_rel": float(rel.abs().max()), "n": len(rel)}

    def overlap(k):
        a, b = w["ci"][k], c["ci"][k]
        return a[0] <= b[1] and b[0] <= a[1]

    ratio = w["compute_used"] / c["compute_used"]
    print(f"ladder: sizes {args.sizes}, tokens/param (non-embedding) {args.tokens_per_param}, "
          f"batch {args.batch}x{args.seq_len}")
    for name, r in (("wsd", w), ("cosine", c)):
        print(f"  {name:<6} compute {r['compute_used']:.3g} FLOPs ({r['points']} points, {r['wall_s']:.0f} s wall)  "
              f"alpha {r['alpha']:.3f} [{r['ci']['alpha'][0]:.3f}, {r['ci']['alpha'][1]:.3f}]  "
              f"beta {r['beta']:.3f} [{r['ci']['beta'][0]:.3f}, {r['ci']['beta'][1]:.3f}]")
    print(f"  WSD / cosine compute: {ratio:.3f} (goal <= 0.6: {'met' if ratio <= 0.6 else 'missed'}); "
          f"CIs overlap: alpha {overlap('alpha')}, beta {overlap('beta')}")
    d = results["loss_diff"]
    print(f"  final loss, WSD vs cosine at the same point: median {d['median_rel']:+.2%}, max |diff| "
          f"{d['max_abs_rel']:.2%} over {d['n']} points")
    results["ratio"] = ratio
    results["overlap"] = {"alpha": overlap("alpha"), "beta": overlap("beta")}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "bench_ladder.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
