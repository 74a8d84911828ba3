"""The stages of ``scaleplan demo``, each a few library calls (no subprocess).

Conventions: a stage has a name, the ``scaleplan`` arguments that do the same thing by hand
(recorded in study.yaml as the stage's ``command``, quoted by ``planner.provenance.command_line``),
the file or folder whose existence marks it done, and a function that runs it and returns its
output lines (nats for losses, FLOPs for compute). Settings (sizes, budgets, trials) come from
``scaleplan.demo.settings``.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

from planner.errors import UserError
from planner.io import atomic_write
from planner.provenance import command_line

SWEEP_FILES = ("trials.csv", "optuna.journal", "hparams.yaml")  # hparams last: it marks the export done


@dataclass
class DemoContext:
    study: Path
    settings: dict
    workers: int
    progress: bool

    @property
    def data(self) -> Path:
        return self.study / "data"

    @property
    def hparams(self) -> Path:
        return self.study / "hparams.yaml"


@dataclass
class Stage:
    name: str
    args: list[str]                 # the equivalent `scaleplan` arguments
    done: Path                      # exists once the stage has run
    run: Callable[[], list[str]]    # the library calls; returns the output lines

    @property
    def command(self) -> str:
        return command_line(self.args)


# ------------------------------------------------------------------------------------------ stage functions
def _data(ctx: DemoContext, line: str) -> list[str]:
    from proxy_train.data import data_summary, prepare_data

    meta = prepare_data(ctx.data, tokenizer="bytes", max_mb=ctx.settings["max_mb"], command=line,
                        progress=ctx.progress)
    return [data_summary(ctx.data, meta)]


@contextlib.contextmanager
def _one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _coord(ctx: DemoContext, param: str) -> list[str]:
    from proxy_train.coord_check import coord_check

    out = ctx.study / f"coord_{param}"
    with _one_thread():
        r = coord_check(param, [int(w) for w in ctx.settings["coord_widths"].split(",")],
                        seeds=ctx.settings["coord_seeds"], out=out, progress=ctx.progress)
    w = r["worst"]
    return [f"coord check {param}: {'PASS' if r['passed'] else 'FAIL'}, worst slope {w['slope']:+.3f} at "
            f"{w['module']} (t={w['t']}); wrote {out / 'coord_check.json'}"]


def _sweep(ctx: DemoContext, line: str) -> list[str]:
    from proxy_train import sweep
    from proxy_train.study import make_spec

    s = ctx.settings
    spec = make_spec(data=ctx.data, widths=[int(w) for w in s["sweep_widths"].split(",")], param="mup",
                     steps=s["sweep_steps"], tokens=None, sampler="tpe", pruner="hyperband", seed=0, n_layers=2,
                     batch=s["batch"], seq_len=s["seq_len"], head_dim=16, schedule="wsd", tune_wd=False,
                     weight_decay=0.0, objective="proxy")
    summary = sweep.run_sweep(spec, ctx.study / "sweep", trials=s["sweep_trials"], workers=sweep_workers(ctx),
                              storage=None, command=line, heartbeat_interval=60, grace_period=None,
                              progress=ctx.progress)
    return sweep.human_summary(summary).splitlines()


def sweep_workers(ctx: DemoContext) -> int:
    """Worker processes of the sweep stage: the settings' ``sweep_workers`` when set (the fast demo
    uses 1: a one-worker TPE sweep is reproducible, so its tuned LR, and every later stage, is too),
    else the demo's ``--workers``."""
    return int(ctx.settings.get("sweep_workers") or ctx.workers)


def _sweep_export(ctx: DemoContext) -> list[str]:
    """trials table, hparams.yaml and figures, then copied where the dashboard looks (the study's top)."""
    from proxy_train.sweep_export import export

    sweep_dir = ctx.study / "sweep"
    if not (sweep_dir / "optuna.journal").is_file():
        raise UserError("the sweep stage left no journal; rerun `scaleplan demo`")
    out = export(sweep_dir)
    for name in SWEEP_FILES:
        if (sweep_dir / name).is_file():
            atomic_write(ctx.study / name, (sweep_dir / name).read_bytes())
    return [f"wrote {p}" for p in out["written"]] + [f"copied {', '.join(SWEEP_FILES)} to {ctx.study}"]


def _ladder(ctx: DemoContext, line: str) -> list[str]:
    from proxy_train.ladder import DEFAULT_N_RANGE, load_spec, run_ladder

    s = ctx.settings
    n_range = tuple(float(x) for x in s["n_range"].split(",")) if "n_range" in s else DEFAULT_N_RANGE
    spec = load_spec(data=str(ctx.data), hparams=str(ctx.hparams), sizes=s["sizes"], n_range=n_range,
                     tokens_per_param=s["tokens_per_param"], batch=s["batch"], seq_len=s["seq_len"], holdout_extra=True)
    spec.holdout_top = s["holdout_top"]
    r = run_ladder(spec, ctx.study, workers=ctx.workers, command=line, progress=ctx.progress)
    lines = [f"ladder: {r['ok']} ok / {r['points']} points, sizes {', '.join(r['sizes'])} "
             f"({r['non_embedding_decades']:.2f} decades of N_non-emb), compute {r['compute_used']:.3g} FLOPs; "
             f"wrote {r['runs_table']}"]
    return lines + _holdout(ctx)


def _holdout(ctx: DemoContext) -> list[str]:
    from planner.fit import ChinchillaFitter
    from planner.holdout import holdout_check

    try:
        h = holdout_check(ctx.study, fitter=ChinchillaFitter(bootstrap=ctx.settings["bootstrap"], seed=0, n_jobs=2),
                          top=ctx.settings["holdout_top"])
    except UserError as e:
        return [f"held-out check skipped: {e}"]
    return [f"held-out check: fit on {h.n_fit} runs, {h.n_heldout} held out, max |error| {h.max_abs_rel_error:.2%}; "
            f"wrote {ctx.study / 'holdout.json'}"]


def _fit(ctx: DemoContext, line: str) -> list[str]:
    from planner.fit import ChinchillaFitter, fit_runs, runs_table_meta
    from planner.fit_plots import fit_report
    from planner.io import write_json
    from planner.runs import load_runs

    runs = ctx.study / "runs.csv"
    df = load_runs(runs, n_col="non_embedding_params", loss_col="final_val_loss", d_col="tokens")
    fitter = ChinchillaFitter(bootstrap=ctx.settings["bootstrap"], seed=0, n_jobs=ctx.workers, progress=ctx.progress)
    result = fit_runs(fitter, df, runs_table_meta(runs, n_col="non_embedding_params", loss_col="final_val_loss",
                                                  d_col="tokens", flops_col=None, command=line))
    write_json(ctx.study / "fit.json", result.to_dict())
    atomic_write(ctx.study / "fit.html", fit_report(df[fitter.kept_mask_], result))
    law = result.law
    return [f"fit on {result.n_rows} runs: E={law.E:.4g} A={law.A:.4g} B={law.B:.4g} alpha={law.alpha:.4g} "
            f"beta={law.beta:.4g} (loss in nats); wrote {ctx.study / 'fit.json'}, {ctx.study / 'fit.html'}"]


def _plan(ctx: DemoContext, line: str) -> list[str]:
    from planner.plan import Budget, PlanRequest, make_plan

    law = ctx.settings["plan_law"] or str(ctx.study / "fit.json")
    # the toy sweep fails the hparams quality gate (8 trials, no transfer check): the demo applies
    # them anyway to show the μP path end to end, and the plan says so in a warning
    # PP 1: torchtitan 0.3.0 cannot build μP's per-group optimizer on pipeline stages (its export says so)
    plan = make_plan(PlanRequest(budget=Budget.from_gpu_days(64, 7, "h100", None), law=law, hparams=str(ctx.hparams),
                                 force_hparams=True, gpu="h100", n_gpus=64, pp=1, command=line))
    plan.write(ctx.study / "plan.yaml")
    return (plan.summary() + f"\n  written to {ctx.study / 'plan.yaml'}").splitlines()


def _export(ctx: DemoContext, trainer: str, line: str) -> list[str]:
    from planner.export import export
    from planner.plan import Plan

    plan = Plan.read(ctx.study / "plan.yaml")
    # torchtitan has no μP: the demo writes its folded approximation (stated in run.sh's header)
    kw = {"allow_approximate_mup": True} if trainer == "torchtitan" else {}
    res = export(plan, trainer, ctx.study / "exports" / trainer, command=line, **kw)
    return [f"{trainer} export of plan {plan.plan_hash[:12]}:", *(f"  {f}" for f in res["files"])]


# ------------------------------------------------------------------------------------------ the pipeline
def _stage(name: str, args: list[str], done: Path, fn, *fn_args, with_line: bool = True) -> Stage:
    """A Stage whose function gets the stage's command line as its last argument (provenance)."""
    extra = (command_line(args),) if with_line else ()
    return Stage(name, args, done, partial(fn, *fn_args, *extra))


def stages(ctx: DemoContext) -> list[Stage]:
    """Every stage in order (see scaleplan/demo.py)."""
    st, data, s = str(ctx.study), str(ctx.data), ctx.settings
    ladder = ["ladder", "--study", st, "--data", data, "--hparams", str(ctx.hparams), "--sizes", s["sizes"],
              "--tokens-per-param", s["tokens_per_param"], "--batch", str(s["batch"]), "--seq-len",
              str(s["seq_len"]), "--workers", str(ctx.workers), "--holdout-extra", "--holdout-top",
              str(s["holdout_top"]), "--bootstrap", str(s["bootstrap"])]
    if "n_range" in s:
        ladder += ["--n-range", s["n_range"]]
    coord = ["--widths", s["coord_widths"], "--seeds", str(s["coord_seeds"])]
    sweep = ["sweep", "--study", f"{st}/sweep", "--data", data, "--widths", s["sweep_widths"], "--trials",
             str(s["sweep_trials"]), "--workers", str(sweep_workers(ctx)), "--steps", str(s["sweep_steps"]),
             "--n-layers",
             "2", "--head-dim", "16", "--batch", str(s["batch"]), "--seq-len", str(s["seq_len"]), "--schedule", "wsd"]
    fit = ["fit", f"{st}/runs.csv", "--n-col", "non_embedding_params", "--d-col", "tokens", "--loss-col",
           "final_val_loss", "--bootstrap", str(s["bootstrap"]), "--workers", str(ctx.workers), "--out",
           f"{st}/fit.json", "--plot", f"{st}/fit.html"]
    plan = ["plan", "--gpus", "64", "--days", "7", "--gpu", "h100", "--law", s["plan_law"] or f"{st}/fit.json",
            "--hparams", str(ctx.hparams), "--force-hparams", "--pp", "1", "--out", f"{st}/plan.yaml"]
    study = ctx.study
    return [
        _stage("data", ["data", "prepare", "--out", data, "--tokenizer", "bytes", "--max-mb", str(s["max_mb"])],
               study / "data" / "meta.json", _data, ctx),
        _stage("coord_mup", ["coord-check", "--param", "mup", *coord, "--out", f"{st}/coord_mup"],
               study / "coord_mup" / "coord_check.json", _coord, ctx, "mup", with_line=False),
        _stage("coord_sp", ["coord-check", "--param", "sp", *coord, "--out", f"{st}/coord_sp"],
               study / "coord_sp" / "coord_check.json", _coord, ctx, "sp", with_line=False),
        _stage("sweep", sweep, study / "sweep" / "optuna.journal", _sweep, ctx),
        _stage("sweep_export", ["sweep", "export", "--study", f"{st}/sweep"], ctx.hparams, _sweep_export, ctx,
               with_line=False),
        _stage("ladder", ladder, study / "holdout.json", _ladder, ctx),
        _stage("fit", fit, study / "fit.json", _fit, ctx),
        _stage("plan", plan, study / "plan.yaml", _plan, ctx),
        *(_stage(f"export_{t}", ["export", f"{st}/plan.yaml", "--trainer", t, "--out", f"{st}/exports/{t}",
                                 *(["--allow-approximate-mup"] if t == "torchtitan" else [])],
                 study / "exports" / t, _export, ctx, t) for t in ("megatron", "torchtitan", "hf")),
    ]
