"""``scaleplan demo``: the whole workflow at toy scale into one study folder (``make demo``).

Stages, each a few library calls in this process (:mod:`scaleplan.demo_stages`); the equivalent
``scaleplan`` command lines, the stage times and output lines are recorded in ``STUDY/study.yaml``
under ``demo``:

1. data      byte-level tokens of this Python's stdlib sources (vocab 256 + EOT, padded to 320):
             a small vocab keeps the embedding from dominating 10^3..10^5-parameter proxies.
2. coord     μP and SP coordinate checks (μP should pass, SP fail).
3. sweep     a short μP sweep (TPE) of the base hyperparameters on widths 32 and 64, then
             ``sweep export`` -> hparams.yaml (copied, with trials.csv and the Optuna journal,
             to the study's top level, where the dashboard looks).
4. ladder    WSD ladder over 5 widths at the sweep's depth 2 (1.57 decades of non-embedding N) x 5
             budgets (4..16 tokens per non-embedding parameter) plus one larger held-out proxy
             (>= 4x the largest fitted compute); holdout.json.
5. fit       Chinchilla Approach 3 with 200 bootstrap resamples -> fit.json, fit.html.
6. plan      64 H100 x 7 days with the study's fit and hparams -> plan.yaml. The law is fitted on
             byte-level toy models: the plan shows the pipeline, not a forecast for a real LLM.
7. exports   Megatron-LM, torchtitan and HF launch files from plan.yaml -> exports/.

A stage is skipped when its output exists (rerun = resume; ``--force`` redoes all). The data
stage runs only when a later stage needs it (its token files are not committed). Budget: at most
20 minutes on 2 idle cores. Measured on this project's 2-core machine (stage times are recorded in
study.yaml): data 4 s, coordinate checks 3 + 3 s, sweep 17 s, export 1 s, ladder 188 s, fit 3 s,
plan + exports 1 s: about 3.7 minutes in all.
"""
from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

from planner import __version__
from planner.errors import UserError
from planner.io import atomic_write, read_json, read_yaml
from planner.laws import DEFAULT_LAW
from scaleplan.demo_stages import DemoContext, Stage, stages

GITIGNORE = """\
# written by `scaleplan demo`: token files, checkpoints, per-run folders and large HTML stay local
data/
runs/
sweep/runs/
sweep/logs/
*.pt
*.bin
*.html
!fit.html
!holdout.html
"""


def settings(fast: bool) -> dict:
    """Scale of each stage; ``fast`` is the test-sized version (about 2 minutes)."""
    if fast:
        return {"max_mb": 1.0, "coord_widths": "32,64,128", "coord_seeds": 1, "sweep_widths": "32,64",
                "sweep_trials": 3, "sweep_workers": 1,  # one worker: a reproducible sweep
                "sweep_steps": 40, "batch": 8, "seq_len": 64, "sizes": "16:1,32:1,48:1",
                "tokens_per_param": "2,4,8", "holdout_top": 0, "bootstrap": 50,
                # 9 toy runs do not identify a law worth planning with: plan with the published one
                "plan_law": DEFAULT_LAW}
    return {"max_mb": 8.0, "coord_widths": "32,64,128,256", "coord_seeds": 3, "sweep_widths": "32,64",
            "sweep_trials": 8, "sweep_steps": 200, "batch": 8, "seq_len": 64, "sizes": "auto",
            "n_range": "6e3,2.2e5", "tokens_per_param": "4,6,8,12,16", "holdout_top": 2, "bootstrap": 200,
            # The toy law (byte-level proxies of 1e4..2e5 parameters, loss floor not reached) serves the
            # held-out check; planning 64 H100 x 7 days from it would extrapolate N by 2 and D by 7 decades
            # (the planner warns). The example plan uses the published law with the demo's μP hparams.
            "plan_law": DEFAULT_LAW}


def _previous_stages(study: Path) -> dict:
    if not (study / "study.yaml").is_file():
        return {}
    return ((read_yaml(study / "study.yaml", "study.yaml") or {}).get("demo") or {}).get("stages") or {}


def _run_stage(stage: Stage, record: dict, study: Path, progress: bool) -> None:
    """Run one stage; record its command, time, status and output in study.yaml (also when it fails)."""
    from proxy_train.ladder import update_study_yaml

    if progress:
        print(f"[demo] {stage.name}: {stage.command}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    error: Exception | None = None
    try:
        lines = stage.run()
    except Exception as e:  # recorded, then raised below
        error, lines = e, [f"{type(e).__name__}: {e}"]
    out_text = "\n".join(lines).strip()
    if progress and out_text:
        print("\n".join(f"    {ln}" for ln in out_text.splitlines()[-12:]), file=sys.stderr)
    exit_code = 0 if error is None else (2 if isinstance(error, UserError) else 1)
    record["stages"][stage.name] = {"command": stage.command, "seconds": round(time.perf_counter() - t0, 1),
                                    "exit_code": exit_code, "status": "ok" if error is None else "failed",
                                    "output": out_text[-2000:]}
    update_study_yaml(study, "demo", record)
    if isinstance(error, UserError):
        raise UserError(f"demo stage {stage.name} failed ({error}); fix the cause and rerun `scaleplan demo` to "
                        "resume from this stage") from None
    if error is not None:
        raise error


def _pending(plan: list[Stage], record: dict, study: Path, force: bool) -> list[Stage]:
    """Stages to run; the data stage only when a later stage needs its (uncommitted) token files."""
    def is_done(stage: Stage) -> bool:
        return not force and stage.done.exists() and record["stages"].get(stage.name, {}).get("status") == "ok"

    pending = [st for st in plan[1:] if not is_done(st)]
    if pending and not (is_done(plan[0]) and (study / "data" / "train.bin").is_file()):
        pending.insert(0, plan[0])
    return pending


def run_demo(study: str | Path = "studies/demo", *, fast: bool = False, workers: int = 2, force: bool = False,
             command: str = "scaleplan demo", progress: bool = True) -> dict:
    """Run every pending stage; returns the stage summary (also in STUDY/study.yaml ``demo``)."""
    from proxy_train.ladder import update_study_yaml
    from proxy_train.train import versions

    study = Path(study)
    if study.exists() and not study.is_dir():
        raise UserError(f"--study {study} is a file; choose a folder")
    study.mkdir(parents=True, exist_ok=True)
    if not (study / ".gitignore").exists():
        atomic_write(study / ".gitignore", GITIGNORE)
    s = settings(fast)
    plan = stages(DemoContext(study, s, workers, progress))
    record = {"command": command, "fast": fast, "scaleplan": __version__,
              "versions": {k: str(v) for k, v in versions().items()}, "settings": s,
              "stages": dict(_previous_stages(study)),
              "note": "toy scale: byte-level proxies of 10^3..10^5 parameters on Python stdlib sources; the plan "
                      "and exports show the pipeline, not a forecast for a real LLM"}
    pending = _pending(plan, record, study, force)
    t_all = time.perf_counter()
    for stage in plan:
        if stage not in pending:
            if progress:
                why = f"done before ({stage.done})" if stage.done.exists() else "not needed (every later stage is done)"
                print(f"[demo] {stage.name}: {why}, skipped", file=sys.stderr)
            continue
        if force and stage.done.is_dir():
            shutil.rmtree(stage.done)
        _run_stage(stage, record, study, progress)
    record["total_seconds_this_run"] = round(time.perf_counter() - t_all, 1)
    record["outputs"] = outputs(study)
    if pending:  # a rerun with nothing to do leaves study.yaml as it was
        update_study_yaml(study, "demo", record)
    return record


def outputs(study: Path) -> dict:
    """Where everything went (paths that exist)."""
    names = {"study record": "study.yaml", "coordinate check (μP)": "coord_mup/coord_check.json",
             "coordinate check (SP)": "coord_sp/coord_check.json", "sweep study": "sweep",
             "sweep trials": "trials.csv", "hyperparameters": "hparams.yaml", "runs table": "runs.csv",
             "held-out check": "holdout.json", "held-out figure": "holdout.html", "fit": "fit.json",
             "fit report": "fit.html", "plan": "plan.yaml", "Megatron-LM launch": "exports/megatron",
             "torchtitan config": "exports/torchtitan", "HF config": "exports/hf"}
    return {k: str(study / v) for k, v in names.items() if (study / v).exists()}


def human_summary(rec: dict) -> str:
    lines = ["scaleplan demo" + (" (fast)" if rec.get("fast") else "") + ": stage times (this machine)"]
    for name, st in rec["stages"].items():
        lines.append(f"  {name:<18} {st['status']:<6} {st['seconds']:>7.1f} s   {st['command']}")
    total = sum(st["seconds"] for st in rec["stages"].values())
    lines.append(f"  total {total / 60:.1f} min of stage time (this run: {rec['total_seconds_this_run']:.0f} s)")
    study = Path(next(iter(rec["outputs"].values()))).parent if rec.get("outputs") else None
    hold = study / "holdout.json" if study else None
    if hold is not None and hold.is_file():
        h = read_json(hold)
        lines.append(f"held-out check: max |error| {h['max_abs_rel_error']:.2%} over {h['n_heldout']} runs "
                     f"(goal 1.5%: {'met' if h['goal']['met'] else 'missed'}), "
                     f"{h['frac_inside_interval']:.0%} inside the 95% interval")
    lines.append("outputs:")
    lines += [f"  {k:<24} {v}" for k, v in rec.get("outputs", {}).items()]
    if study is not None:
        lines.append(f"open the dashboard on it: scaleplan app, then pick {study.name!r} in the sidebar "
                     "(the app opens on the bundled real-scale study)")
    return "\n".join(lines)
