"""A small but complete study folder for the dashboard tests (tests/test_app*.py).

Everything is made here, in a temp dir: runs.csv (per docs/CONTRACTS.md, losses drawn from the
Epoch replication law of Besiroglu et al. 2024 with 0.5% noise), fit.json (the same law, with
bootstrap samples), hparams.yaml, a tiny Optuna journal created with Optuna itself,
coord_check.json for μP (pass) and SP (fail), and transfer.json (laid out by proxy_train.transfer.analyze).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# Besiroglu et al. 2024 ("Chinchilla Scaling: A replication attempt", arXiv:2404.10102), eq. 4.
TRUE = {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}


def make_runs(n_rows_per_size: int = 4, seed: int = 0):
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = []
    for i, N in enumerate([2e7, 5e7, 1e8, 2e8, 4e8]):
        for j, tpp in enumerate(np.geomspace(5, 80, n_rows_per_size)):
            D = N * tpp
            L = TRUE["E"] + TRUE["A"] / N ** TRUE["alpha"] + TRUE["B"] / D ** TRUE["beta"]
            L *= 1 + 0.005 * rng.standard_normal()
            rows.append({"run_id": f"r{i}_{j}", "total_params": N, "non_embedding_params": 0.8 * N,
                         "tokens": D, "flops": 6 * N * D, "final_val_loss": L, "final_train_loss": L + 0.01,
                         "schedule": "cosine", "status": "ok", "d_model": 128 * (i + 1), "n_layers": 4})
    rows.append({**rows[0], "run_id": "diverged", "final_val_loss": 9.9, "status": "diverged"})
    return pd.DataFrame(rows)


def _holdout() -> dict:
    """A holdout block like `scaleplan fit --holdout-top-compute`: the 3 highest-compute runs."""
    df = make_runs().query("status == 'ok'").nlargest(3, "flops")
    rows = []
    for _, r in df.iterrows():
        pred = TRUE["E"] + TRUE["A"] / r.total_params ** TRUE["alpha"] + TRUE["B"] / r.tokens ** TRUE["beta"]
        rows.append({"N": r.total_params, "D": r.tokens, "loss": r.final_val_loss, "pred": pred,
                     "lo": pred * 0.99, "hi": pred * 1.01})
    errs = [abs(x["loss"] / x["pred"] - 1) for x in rows]
    return {"n": 3, "max_rel_error": max(errs), "mean_rel_error": sum(errs) / 3,
            "inside_interval": [x["lo"] <= x["loss"] <= x["hi"] for x in rows], "rows": rows}


def make_study(root: Path, name: str = "demo") -> Path:
    """Write a study folder ``root/name`` and return it."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    study = root / name
    study.mkdir(parents=True)
    make_runs().to_csv(study / "runs.csv", index=False)
    rng = np.random.default_rng(1)
    samples = [[TRUE[k] * (1 + 0.02 * rng.standard_normal()) for k in ("E", "A", "B", "alpha", "beta")]
               for _ in range(20)]
    ci = {k: [float(np.percentile(np.array(samples)[:, i], 2.5)), float(np.percentile(np.array(samples)[:, i], 97.5))]
          for i, k in enumerate(("E", "A", "B", "alpha", "beta"))}
    fit = {"approach": 3, **TRUE, "ci": ci, "n_rows": 20, "n_dropped": 1, "objective": 1e-4, "converged": True,
           "grad_norm": 1e-10, "bootstrap": {"n": 20, "samples": samples},
           "holdout": _holdout(), 
           "warnings": [], "meta": {"source": "runs.csv", "n_col": "total_params", "loss_col": "final_val_loss"}}
    (study / "fit.json").write_text(json.dumps(fit))
    (study / "hparams.yaml").write_text(
        "parameterization: mup\nbase_width: 128\nbase_depth: 4\nbase_head_dim: 32\nlr: 0.0078\ninit_std: 0.02\n"
        "alpha_in: 1.0\nalpha_out: 1.0\nattn_mult: 1.0\nwarmup_frac: 0.05\nweight_decay: 0.0\nwd_rule: mup\n"
        "readout_zero_init: true\nquery_zero_init: true\nbetas: [0.9, 0.95]\n")

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(study / "optuna.journal")))
    ost = optuna.create_study(study_name="mup_sweep", storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(trial):  # a smooth stand-in for a proxy run: best log2 lr ≈ -7 at every width
        lr = trial.suggest_float("lr", 2 ** -12, 2 ** -3, log=True)
        width = trial.suggest_categorical("width", [64, 128])
        init_std = trial.suggest_float("init_std", 0.005, 0.1, log=True)
        return 3.0 + 0.05 * (np.log2(lr) + 7) ** 2 + 0.1 * abs(np.log10(init_std / 0.02)) - 0.001 * width / 64

    ost.optimize(objective, n_trials=12)

    for param, passed, growth in (("mup", True, 0.0), ("sp", False, 1.0)):
        # l1 = mean|activation| per (module, step, width): flat in width under μP, ∝ width under SP
        l1 = [{"module": m, "t": t, "width": w, "l1": 0.5 * (w / 32) ** (growth * (t > 1)) * (1 + 0.01 * t)}
              for m in ("embedding", "blocks.0.attn", "<logits>") for t in (1, 2, 3) for w in (32, 64, 128)]
        slopes = {m: {str(t): growth * (t > 1) for t in (1, 2, 3)} for m in ("embedding", "blocks.0.attn", "<logits>")}
        d = study / f"coord_{param}"
        d.mkdir()
        (d / "coord_check.json").write_text(json.dumps({
            "param": param, "passed": passed, "widths": [32, 64, 128], "steps": 3, "lr": 0.01, "seeds": 1,
            "n_layers": 2, "head_dim": 16, "optimizer": "MuAdamW" if param == "mup" else "AdamW",
            "criterion": "|d log2 l1 / d log2 width| < 0.15 for every module at every t >= 2",
            "worst": {"module": "embedding", "t": 2, "slope": growth}, "n_failing": 0 if passed else 6,
            "slopes": slopes, "l1": l1}))
    from proxy_train.transfer import analyze  # the library's own analysis makes the file's layout

    recs = [{"param": p, "width": w, "log2_lr": float(x),
             "loss": 3 + 0.05 * (x + 7 + (0 if p == "mup" else np.log2(w / 64))) ** 2 - 0.01 * np.log2(w)}
            for p in ("mup", "sp") for w in (64, 128, 256) for x in range(-12, -3)]
    (study / "transfer.json").write_text(json.dumps(analyze(recs)))
    return study
