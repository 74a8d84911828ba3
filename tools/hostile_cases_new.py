"""Hostile cases for the commands and flags of issue 16 (loss-curve law, budget ladder, lazy layers,
fit choices), in the form of :mod:`tools.hostile_cases` (which appends them to its table)."""
from __future__ import annotations

RUNS = ["{W}/runs.csv", "--n-col", "total_params", "--d-col", "tokens", "--loss-col", "final_val_loss",
        "--grid", "small", "--no-backtest"]
BUDGET = ["--data", "{W}/data", "--hparams", "{W}/hparams.yaml", "--batch", "2", "--seq-len", "16",
          "--workers", "1", "--no-check", "--plan-only"]
TINY = ["--data", "{W}/data", "--d-model", "32", "--n-layers", "1", "--head-dim", "16", "--batch", "2",
        "--seq-len", "16", "--steps", "2"]


def numeric_cases(numeric, ladder_base) -> list:
    """Bad numbers on the new numeric flags (``numeric`` is hostile_cases._numeric)."""
    return (numeric("ladder", BUDGET, {"--budget-minutes": ()}, out_flag="--study", fast=("ladder--budget-minutes=nan",))
            + numeric("ladder", ladder_base, {"--evals-per-run": ()}, out_flag="--study")
            + numeric("curve-law", ["--study", "{W}/study"], {"--lam": (), "--predict-tokens-per-param": ()},
                      out_flag="--out")
            + numeric("attention", ["--run", "{W}/run"], {"--sequences": ()})
            + numeric("train", [*TINY, "--inherit-from", "{W}/run"], {"--inherit-layers": ()}, out_flag="--out"))


def misc_cases(Case) -> list:
    """Wrong combinations and malformed values of the new options."""
    bad_prior = {"zero-sd": "1.7,0", "neg-mean": "-1,0.1", "nan": "nan,0.1", "inf-sd": "1.7,inf", "one": "1.7",
                 "three": "1,2,3", "text": "a,b"}
    cases = [Case(f"fit--E-prior={k}", ("fit", *RUNS, "--E-prior", v)) for k, v in bad_prior.items()]
    cases += [
        Case("fit--E-prior-with-fixed-E", ("fit", *RUNS, "--E-prior", "1.7,0.1", "--fixed-E", "1.7")),
        Case("fit--E-prior-from=missing", ("fit", *RUNS, "--E-prior-from", "{W}/nope.json")),
        Case("fit--E-prior-from=deep", ("fit", *RUNS, "--E-prior-from", "{W}/f.json"),
             files={"f.json": "[" * 100_000 + "]" * 100_000}),
        Case("fit--group-by=missing-column", ("fit", *RUNS, "--group-by", "nope", "--share", "alpha,beta")),
        Case("fit--share=unknown", ("fit", *RUNS, "--group-by", "schedule", "--share", "gamma")),
        Case("fit--form-and-select", ("fit", *RUNS, "--form", "kaplan", "--select", "backtest")),
        Case("ladder--budget-with-sizes", ("ladder", *BUDGET, "--sizes", "32:1", "--budget-minutes", "5",
                                           "--study", "{W}/l")),
        Case("curve-law--study=not-a-ladder", ("curve-law", "--study", "{W}/adir", "--out", "{W}/cl.json")),
        Case("curve-law--out=under-file", ("curve-law", "--study", "{W}/study", "--out", "{W}/afile/x.json")),
        Case("attention--run=missing", ("attention", "--run", "{W}/nope")),
        Case("attention--run=data-folder", ("attention", "--run", "{W}/data")),
        Case("train--inherit-from=missing", ("train", *TINY, "--inherit-from", "{W}/nope", "--inherit-layers", "1",
                                             "--out", "{W}/r")),
        Case("train--inherit-layers-alone", ("train", *TINY, "--inherit-layers", "1", "--out", "{W}/r")),
        Case("train--inherit-from=other-width", ("train", *TINY[:2], "--d-model", "64", *TINY[4:], "--inherit-from",
                                                 "{W}/run", "--inherit-layers", "1", "--out", "{W}/r")),
        Case("train--inherit-from=bad-model", ("train", *TINY, "--inherit-from", "{W}/run", "--inherit-layers", "1",
                                               "--out", "{W}/r"), files={"run/model.pt": b"\x80\x04not a model"}),
    ]
    return cases
