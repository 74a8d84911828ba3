"""Loss-curve law (Tissue et al. 2024, arXiv:2408.11029) on our proxy ladders: cross-schedule error
and a cheaper ladder.

1. Cross-schedule: per size, fit the law on the WSD ladder's curves (trunk + every cooldown branch)
   and predict the final validation loss of each cosine run of that size on its own schedule; and
   the reverse (fit on the cosine runs' curves, predict each WSD branch). |relative error| median
   and max over the points, next to the naive mapping "cosine loss = WSD loss at the same point".
2. Cheap ladder: ONE WSD run per size to --cheap-tpp tokens/param; the law fitted on it predicts
   every (size, budget) of the cosine ladder as a cosine run; a Chinchilla fit on those predicted
   points gives (alpha, beta) with 95 % bootstrap intervals, compared with the cosine ladder's fit.
   Compute ratio = compute trained (6 N_total D) / the cosine ladder's compute.

    .venv/bin/python benchmarks/bench_curve_law.py [--ladders /tmp/P_bench_ladder] [--cheap-tpp 12]

``--ladders`` holds ``wsd/`` and ``cosine/`` studies as benchmarks/bench_ladder.py writes them (trained
here when missing; resumable); the cheap ladder goes to LADDERS/cheap_<tpp>/ (resumable).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = "16:2,32:2,48:2,64:2,96:2"
TPP = "4,6,8,12,16"


def _ladder(args, schedule: str, tpp: str, study: Path, evals_per_run: int | None = None, command: str = "") -> dict:
    from proxy_train.ladder import load_spec, run_ladder

    spec = load_spec(data=args.data, hparams=args.hparams, sizes=SIZES, tokens_per_param=tpp, schedule=schedule,
                     batch=8, seq_len=64)
    if evals_per_run:
        spec.evals_per_run = evals_per_run
    return run_ladder(spec, study, workers=args.workers, command=command or f"benchmarks/bench_curve_law.py ({study.name})")


def _rel(pred: float, true: float) -> float:
    return (pred - true) / true


def cross_schedule(src: dict, dst: dict, lam) -> list[dict]:
    """Fit on each size's ``src`` runs; predict each ``dst`` run's final val loss on its own schedule."""
    from proxy_train.curve_fit import fit_size, run_lr_factors

    out = []
    for size, runs in src.items():
        law = fit_size(runs, lam=lam)
        for r in dst.get(size, []):
            if r.get("status") != "ok":
                continue
            pred = law.final(run_lr_factors(r))
            out.append({"size": size, "steps": r["steps"], "tokens": r["tokens"], "true": r["final_val_loss"],
                        "pred": pred, "rel": _rel(pred, r["final_val_loss"]), "lam": law.lam})
    return out


def naive(src: dict, dst: dict) -> list[float]:
    """Relative error of predicting a ``dst`` run's loss by the ``src`` run of the same size and tokens."""
    errs = []
    for size, runs in dst.items():
        by_tokens = {r["tokens"]: r["final_val_loss"] for r in src.get(size, [])}
        errs += [_rel(by_tokens[r["tokens"]], r["final_val_loss"]) for r in runs if r["tokens"] in by_tokens]
    return errs


def _summary(errs) -> str:
    import numpy as np

    a = np.abs(np.asarray(errs, dtype=float))
    return f"median |err| {np.median(a):.2%}, max |err| {a.max():.2%} over {len(a)} points"


def chinchilla(df, bootstrap: int, workers: int) -> dict:
    from planner.fit import ChinchillaFitter

    f = ChinchillaFitter(bootstrap=bootstrap, seed=0, n_jobs=workers).fit(
        df["non_embedding_params"], df["tokens"], df["final_val_loss"])
    return {"alpha": f.params_["alpha"], "beta": f.params_["beta"], "E": f.params_["E"],
            "ci": {k: list(f.ci_[k]) for k in ("alpha", "beta", "E")}, "warnings": list(f.warnings_)}


def _fmt(name: str, r: dict) -> str:
    ci = r["ci"]
    return (f"  {name:<22} alpha {r['alpha']:.3f} [{ci['alpha'][0]:.3f}, {ci['alpha'][1]:.3f}]  "
            f"beta {r['beta']:.3f} [{ci['beta'][0]:.3f}, {ci['beta'][1]:.3f}]")


def _overlap(a, b) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def _truth(runs: dict) -> dict:
    return {(size, round(r["tokens"] / r["non_embedding_params"])): r["final_val_loss"]
            for size, rs in runs.items() for r in rs if r.get("status") == "ok"}


def cheap_ladder(args, measured: dict, summ_cos: dict) -> dict:
    """Train the cheap ladder; per target schedule (cosine, wsd): predicted points, their error against
    the measured ladder of that schedule, and the Chinchilla fit on the predicted points."""
    import pandas as pd

    from proxy_train.curve_fit import fit_size, predicted_rows, study_runs

    study = Path(args.ladders) / f"cheap_{args.cheap_tpp:g}"
    s = _ladder(args, "wsd", f"{args.cheap_tpp:g}", study, evals_per_run=args.evals)
    cheap = study_runs(study)
    tpps = [float(x) for x in TPP.split(",")]
    laws = {size: fit_size(runs, lam=args.lam) for size, runs in cheap.items()}
    out = {"study": str(study), "compute_used": s["compute_used"], "ratio": s["compute_used"] / summ_cos["compute_used"],
           "lams": {k: v.lam for k, v in laws.items()}, "wall_s": s["wall_s"],
           "laws": {k: v.to_dict() for k, v in laws.items()}}
    for target in ("cosine", "wsd"):
        rows = [row for size, runs in cheap.items() for row in predicted_rows(laws[size], runs[0], size, tpps, target)]
        truth = _truth(measured[target])
        keys = [(p["size"], round(p["tokens_per_param"])) for p in rows]
        errs = [_rel(p["final_val_loss"], truth[k]) for p, k in zip(rows, keys) if k in truth]
        out[target] = {"fit": chinchilla(pd.DataFrame(rows), args.bootstrap, args.workers), "errors": errs,
                       "predicted": rows}
    return out


def lam_sweep(runs: dict, lams=(0.99, 0.995, 0.998, 0.999)) -> list[str]:
    """Cross-schedule errors at fixed lam values (how much the choice of lam matters)."""
    lines = []
    for lam in lams:
        w2c = [r["rel"] for r in cross_schedule(runs["wsd"], runs["cosine"], lam)]
        c2w = [r["rel"] for r in cross_schedule(runs["cosine"], runs["wsd"], lam)]
        lines.append(f"    lam {lam:<6g} WSD->cosine {_summary(w2c)}; cosine->WSD {_summary(c2w)}")
    return lines


FIXTURE_KEYS = ("run_id", "status", "steps", "tokens", "total_params", "non_embedding_params", "final_val_loss",
                "d_model", "n_layers", "branch")
FIXTURE_CONFIG = ("schedule", "warmup_steps", "warmup_frac", "cooldown_frac", "min_lr_frac", "cooldown_shape",
                  "eval_batches", "batch", "seq_len")


def write_fixture(path: Path, runs: dict, size: str) -> None:
    """The curves of one size's WSD and cosine runs, compact (train losses to 4 decimals, steps implied
    1..n; validation [step, loss]), for tests/test_curve_law_real.py."""
    def compact(r):
        return {**{k: r.get(k) for k in FIXTURE_KEYS}, "config": {k: r["config"].get(k) for k in FIXTURE_CONFIG},
                "train": [round(p[2], 4) for p in r["curve"]["train"]],
                "val": [[p[0], round(p[2], 5)] for p in r["curve"]["val"]]}
    assert all([p[0] for p in r["curve"]["train"]] == list(range(1, len(r["curve"]["train"]) + 1))
               for k in runs for r in runs[k][size])
    doc = {"source": "benchmarks/bench_curve_law.py --write-fixture: the ladders of benchmarks/bench_ladder.py "
                     f"(studies/demo data and hparams), size {size}", "size": size,
           **{k: [compact(r) for r in sorted(runs[k][size], key=lambda r: r["steps"])] for k in ("wsd", "cosine")}}
    path.write_text(json.dumps(doc, separators=(",", ":")) + "\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT / "studies/demo/data"))
    p.add_argument("--hparams", default=str(ROOT / "studies/demo/hparams.yaml"))
    p.add_argument("--ladders", default="/tmp/bench_ladder")
    p.add_argument("--cheap-tpp", type=float, default=12.0)
    p.add_argument("--evals", type=int, default=16, help="validation evaluations per cheap run (LadderSpec.evals_per_run)")
    p.add_argument("--lam", type=float, default=None, help="fix the annealing momentum (default: fitted per size)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--bootstrap", type=int, default=200)
    p.add_argument("--out", default=None, help="JSON results (default LADDERS/bench_curve_law.json)")
    p.add_argument("--lam-sweep", action="store_true", help="also print cross-schedule errors at fixed lam values")
    p.add_argument("--write-fixture", metavar="PATH", help="also write one size's curves as a test fixture")
    p.add_argument("--fixture-size", default="d32-L2")
    args = p.parse_args(argv)

    import pandas as pd

    from proxy_train.curve_fit import study_runs

    lad = Path(args.ladders)
    # the same ladders as benchmarks/bench_ladder.py (same command string: reused, not retrained)
    summ = {k: _ladder(args, k, TPP, lad / k, command=f"benchmarks/bench_ladder.py ({k})") for k in ("wsd", "cosine")}
    runs = {k: study_runs(lad / k) for k in ("wsd", "cosine")}
    if args.write_fixture:
        write_fixture(Path(args.write_fixture), runs, args.fixture_size)
    w2c = cross_schedule(runs["wsd"], runs["cosine"], args.lam)
    c2w = cross_schedule(runs["cosine"], runs["wsd"], args.lam)
    cos_fit = chinchilla(pd.read_csv(lad / "cosine" / "runs.csv").query("status == 'ok'"), args.bootstrap, args.workers)
    cheap = cheap_ladder(args, runs, summ["cosine"])
    sweep = lam_sweep(runs) if args.lam_sweep else []

    print(f"loss-curve law L = L0 + A*S1^-alpha - C*S2 (Tissue et al. 2024), one fit per size; lam "
          f"{'fixed ' + str(args.lam) if args.lam is not None else 'chosen per size by robust cost'}")
    print(f"ladders: sizes {SIZES}, tokens/param {TPP}, batch 8x64, studies under {lad}")
    print("cross-schedule, final validation loss (relative error, predicted / measured - 1):")
    print(f"  WSD curves -> cosine finals: {_summary([r['rel'] for r in w2c])} "
          f"(lam per size: {sorted({r['size']: r['lam'] for r in w2c}.items())})")
    print(f"    naive (cosine = WSD loss at the same point): {_summary(naive(runs['wsd'], runs['cosine']))}")
    print(f"  cosine curves -> WSD finals: {_summary([r['rel'] for r in c2w])}")
    print(f"    naive (WSD = cosine loss at the same point): {_summary(naive(runs['cosine'], runs['wsd']))}")
    if sweep:
        print("  the same at fixed lam (not used for the choice above):")
        print("\n".join(sweep))
    ratio_wsd = summ["wsd"]["compute_used"] / summ["cosine"]["compute_used"]
    print(f"cheap ladder: one WSD run per size to {args.cheap_tpp:g} tokens/param ({args.evals} evaluations), "
          f"law -> finals at {TPP} (lam per size: {sorted(cheap['lams'].items())})")
    print(f"  compute: cheap / cosine ladder {cheap['ratio']:.3f} (goal <= 0.3: "
          f"{'met' if cheap['ratio'] <= 0.3 else 'missed'}); WSD ladder / cosine {ratio_wsd:.3f}")
    print(_fmt("cosine ladder (measured)", cos_fit))
    ov = {}
    for target in ("cosine", "wsd"):
        c = cheap[target]
        print(f"  predicted as {target} runs vs the measured {target} ladder: {_summary(c['errors'])}")
        print(_fmt(f"cheap -> {target} (law)", c["fit"]))
        ov[target] = {k: _overlap(c["fit"]["ci"][k], cos_fit["ci"][k]) for k in ("alpha", "beta")}
        print(f"    CIs overlap the cosine ladder's: alpha {ov[target]['alpha']}, beta {ov[target]['beta']}")
    out = Path(args.out) if args.out else lad / "bench_curve_law.json"
    out.write_text(json.dumps({"wsd_to_cosine": w2c, "cosine_to_wsd": c2w, "cosine_fit": cos_fit, "cheap": cheap,
                               "ratio_wsd": ratio_wsd, "overlap": ov}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
