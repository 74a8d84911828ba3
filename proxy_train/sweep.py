"""Optuna sweeps over μP base hyperparameters on small proxy widths.

A *study folder* holds everything a sweep makes: ``study.yaml`` (the options, corpus hash, code
version, proxy config, masked storage URL), the Optuna journal ``optuna.journal`` (default
storage), one proxy run per trial under ``runs/trial_NNNNN/run.json``, worker logs, and after
``scaleplan sweep export`` the trials table, ``hparams.yaml`` and the figures.

Conventions:

* Search space (natural units, all log-uniform except the warmup fraction): ``lr`` (base AdamW
  LR), ``init_std`` (base init std), ``alpha_out`` (output multiplier), ``alpha_in`` (input
  multiplier), ``warmup_frac``; ``weight_decay`` only with ``--tune-wd``. Ranges in ``SPACE``
  bracket the published base values: nanoGPT-mup σ=0.02, α=1; Cerebras-GPT η=6e-3, σ=0.08,
  embedding multiplier 10 (/work/shared/notes/mup-and-sweeps.md §0, §2.3).
* Width: with several ``--widths`` the width is a categorical parameter ``width`` of one study
  (the sampler learns a shared optimum, which μTransfer says exists). Every trial runs with
  ``base_width = width`` (m_d = 1), so the sampled numbers are the base values *at the trial's
  width*, and ``hparams.yaml`` names the best trial's width as ``base_width``.
* Objective: the final validation loss (nats/token) of a proxy run; intermediate validation losses
  are reported at each evaluation with ``step`` = optimizer step, for pruning. Pruners start at
  ``min_resource`` = a quarter of the run: early losses favour large LRs (microsoft/mup#64).
* ``--trials N`` = N finished (COMPLETE or PRUNED) trials; see :mod:`proxy_train.workers`.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from planner import __version__
from planner.errors import UserError
from planner.io import ensure_dir, read_json, read_yaml, write_yaml

from proxy_train import workers as W

META_NAME = "study.yaml"
SAMPLERS = ("tpe", "cmaes", "gp", "random")
PRUNERS = ("hyperband", "asha", "median", "none")

# name -> (low, high, log). lr 2^-13..2^-4 spans the μP optimum ~2^-9 found at widths 64-512
# (notes §4.5) by four octaves on each side.
SPACE: dict[str, tuple[float, float, bool]] = {
    "lr": (2.0 ** -13, 2.0 ** -4, True),
    "init_std": (0.004, 0.2, True),
    "alpha_out": (0.125, 8.0, True),
    "alpha_in": (0.125, 16.0, True),
    "warmup_frac": (0.0, 0.2, False),
}
WD_SPACE = (1e-3, 0.3, True)
# Spec keys that may change between reruns of the same study (all others must match).
MUTABLE = ("trials", "workers")


class Diverged(Exception):
    """The proxy run diverged (loss NaN/inf or exploding): becomes a PRUNED trial with the reason."""


# ----------------------------------------------------------------------------------------------
# spec: the options that define a study
# ----------------------------------------------------------------------------------------------

def data_meta(data: str | Path) -> dict:
    path = Path(data)
    if not path.is_dir():
        raise UserError(f"data folder {path} not found; make one with `scaleplan data prepare --out {path}`")
    meta = read_json(path / "meta.json", "data meta file")
    if not isinstance(meta, dict) or "vocab_size" not in meta:
        raise UserError(f"{path}/meta.json has no vocab_size; re-run `scaleplan data prepare`")
    return meta


def make_spec(*, data: str | Path, widths: list[int], param: str = "mup", steps: int | None = None,
              tokens: int | None = None, sampler: str = "tpe", pruner: str = "hyperband", seed: int = 0,
              n_layers: int = 2, batch: int = 16, seq_len: int = 128, head_dim: int = 32,
              schedule: str = "cosine", tune_wd: bool = False, weight_decay: float = 0.0,
              objective: str = "proxy", kind: str = "sweep", grid: dict | None = None,
              count_failed: bool = False, base_width: int | None = None,
              fixed: dict | None = None) -> dict:
    """Validate the options and return the study spec (a plain dict stored in study.yaml)."""
    if not widths:
        raise UserError("no widths given; pass --widths like 64,128")
    if sorted(set(widths)) != sorted(widths):
        raise UserError(f"--widths has duplicates: {widths}; list each width once")
    if param not in ("mup", "sp", "both"):
        raise UserError(f"--param must be mup or sp, got {param!r}")
    if kind == "sweep" and sampler not in SAMPLERS:
        raise UserError(f"unknown --sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    if pruner not in PRUNERS:
        raise UserError(f"unknown --pruner {pruner!r}; choose one of {', '.join(PRUNERS)}")
    if (steps is None) == (tokens is None):
        raise UserError("give exactly one of --steps S or --tokens T for each proxy run")
    meta = data_meta(data)
    spec = {
        "kind": kind, "data": str(Path(data).resolve()), "corpus_sha256": meta.get("sha256"),
        "vocab_size": int(meta["vocab_size"]), "widths": [int(w) for w in widths], "param": param,
        "steps": steps, "tokens": tokens, "sampler": sampler, "pruner": pruner, "seed": int(seed),
        "n_layers": int(n_layers), "batch": int(batch), "seq_len": int(seq_len),
        "head_dim": int(head_dim), "schedule": schedule, "tune_wd": bool(tune_wd),
        "weight_decay": float(weight_decay), "objective": objective, "grid": grid,
        "count_failed": bool(count_failed), "base_width": base_width, "fixed": fixed or {},
    }
    # Every width must make a valid proxy model (e.g. divisible by the head size).
    for w in spec["widths"]:
        for p in (("mup", "sp") if param == "both" else (param,)):
            train_config(spec, width=w, param=p, hp=default_hparams())
    spec["total_steps"] = train_config(spec, width=spec["widths"][0], param="mup" if param == "both" else param,
                                       hp=default_hparams()).total_steps
    return spec


def default_hparams() -> dict:
    return {"lr": 2.0 ** -9, "init_std": 0.02, "alpha_out": 1.0, "alpha_in": 1.0, "warmup_frac": 0.05}


def train_config(spec: dict, *, width: int, param: str, hp: dict, run_seed: int | None = None):
    """The proxy ``TrainConfig`` of one trial: fixed options from the spec, hp from the sampler."""
    from proxy_train.config import TrainConfig

    base_width = spec.get("base_width") or width
    fixed = dict(spec.get("fixed") or {})
    cfg = TrainConfig(
        data=spec["data"], d_model=int(width), n_layers=spec["n_layers"], head_dim=spec["head_dim"],
        parameterization=param, base_width=int(base_width), lr=float(hp["lr"]), init_std=float(hp["init_std"]),
        alpha_out=float(hp["alpha_out"]), alpha_in=float(hp["alpha_in"]),
        warmup_frac=float(hp["warmup_frac"]),
        weight_decay=float(hp.get("weight_decay", spec["weight_decay"])), steps=spec["steps"],
        tokens=spec["tokens"], batch=spec["batch"], seq_len=spec["seq_len"],
        schedule=spec["schedule"], seed=int(spec["seed"] if run_seed is None else run_seed),
        threads=1, progress=False,
        ckpt_every=10 ** 9,  # a retried trial starts in a fresh folder: mid-run checkpoints are waste
        **fixed,
    )
    return cfg.validate()


# ----------------------------------------------------------------------------------------------
# study folder metadata
# ----------------------------------------------------------------------------------------------

def code_version() -> str:
    """scaleplan version plus the git commit of the checkout (``+dirty`` with local changes)."""
    root = Path(__file__).resolve().parents[1]
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        rev = ""
    return f"{__version__}+{rev}" if rev else __version__


def read_study_meta(study_dir: str | Path) -> dict:
    path = Path(study_dir) / META_NAME
    if not path.exists():
        raise UserError(f"{study_dir} is not a study folder (no {META_NAME}); run `scaleplan sweep` "
                        "or `scaleplan transfer-check` first, or check the path")
    meta = read_yaml(path, "study file")
    if not isinstance(meta, dict) or "spec" not in meta:
        raise UserError(f"{path} is not a scaleplan study file; use another --study folder")
    return meta


def _diff(old: dict, new: dict) -> str | None:
    from planner.io import to_json
    import json

    a, b = json.loads(to_json(old)), json.loads(to_json(new))
    for k in sorted(set(a) | set(b)):
        if k in MUTABLE:
            continue
        if a.get(k) != b.get(k):
            return f"{k}={a.get(k)!r} (now {b.get(k)!r})"
    return None


def write_or_check_meta(study_dir: Path, spec: dict, *, storage_url: str, command: str,
                        trials: int, runtime: dict) -> dict:
    """Create ``study.yaml`` or check that the existing one was made with the same options."""
    path = study_dir / META_NAME
    masked = "journal" if storage_url.startswith("journal:") else W.mask_url(storage_url)
    if path.exists():
        meta = read_study_meta(study_dir)
        diff = _diff(meta["spec"], spec)
        if diff is None and meta.get("storage") != masked:
            diff = f"storage={meta.get('storage')!r} (now {masked!r})"
        if diff:
            raise UserError(f"study {study_dir} was created with {diff}; use a new --study folder or "
                            "the same options")
        meta.update(trials=trials, runtime=runtime, last_command=command)
    else:
        from proxy_train.config import TrainConfig  # noqa: F401 - proves the trainer is importable
        first = spec["widths"][0]
        p = "mup" if spec["param"] == "both" else spec["param"]
        meta = {
            "scaleplan_version": __version__, "code_version": code_version(), "command": command,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "study_name": study_dir.resolve().name, "storage": masked,
            "corpus_sha256": spec.get("corpus_sha256"), "trials": trials, "runtime": runtime,
            "spec": spec,
            "proxy_config": train_config(spec, width=first, param=p, hp=default_hparams()).to_dict(),
        }
    write_yaml(path, meta)
    return meta


class StudyLock:
    """A pid file that stops two ``scaleplan sweep`` commands from running one journal study."""

    def __init__(self, study_dir: Path):
        self.path = study_dir / ".sweep.lock"

    def __enter__(self):
        if self.path.exists():
            try:
                pid = int(self.path.read_text().strip() or 0)
            except ValueError:
                pid = 0
            if pid and pid != os.getpid() and _alive(pid):
                raise UserError(f"study {self.path.parent} is being run by process {pid}; wait for it, "
                                "stop it, or use more --workers in one command")
        self.path.write_text(str(os.getpid()))
        return self

    def __exit__(self, *exc):
        try:
            if self.path.read_text().strip() == str(os.getpid()):
                self.path.unlink()
        except OSError:
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (killed, not yet reaped) is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


# ----------------------------------------------------------------------------------------------
# samplers, pruners, studies
# ----------------------------------------------------------------------------------------------

def make_sampler(spec: dict, seed: int):
    import optuna

    name = spec["sampler"]
    if name == "grid":
        # Every grid cell is enqueued by run_sweep(cells=...), so enqueued trials carry their own
        # parameters; the sampler only sees a trial that raced past the queue, which the target
        # guard fails as surplus. Not GridSampler: it stops the study once its ids look visited,
        # before retried or re-enqueued cells have run.
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "tpe":  # pinned: the 5.0 defaults differ from 4.x (notes §5.1)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True,
                                          n_startup_trials=10)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise UserError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")


def make_pruner(spec: dict):
    """Pruner over optimizer steps; never prunes before a quarter of the run (mup#64)."""
    import optuna

    steps = int(spec["total_steps"])
    min_r = max(1, math.ceil(steps / 4))
    name = spec["pruner"]
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=min_r, max_resource=steps, reduction_factor=3)
    if name == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=min_r, reduction_factor=3)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=min_r)
    return optuna.pruners.NopPruner()


def load_study(study_dir: Path, url: str, spec: dict, *, worker_id: int = 0, create: bool = False):
    """Open (or with ``create`` create) the study with this worker's sampler and the pruner."""
    import optuna

    meta = read_study_meta(study_dir) if (Path(study_dir) / META_NAME).exists() else {}
    rt = meta.get("runtime", {})
    name = meta.get("study_name") or Path(study_dir).resolve().name
    if not create and url.startswith("journal:") and not Path(url.split("://", 1)[1]).exists():
        raise UserError(f"study {name} not found in {W.mask_url(url)} (the journal file is missing); "
                        "restore it or run `scaleplan sweep` first")  # opening would create an empty one
    storage = W.open_storage(url, heartbeat_interval=rt.get("heartbeat_interval"),
                             grace_period=rt.get("grace_period"))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if create:
        try:
            optuna.create_study(study_name=name, storage=storage, direction="minimize", load_if_exists=True)
        except Exception as e:  # a schema/connection problem on first use
            raise UserError(f"cannot create study {name} in {W.mask_url(url)}: {str(e).splitlines()[0]}; "
                            "check the storage") from None
    try:
        n_existing = len(storage.get_all_trials(storage.get_study_id_from_name(name), deepcopy=False))
    except KeyError:
        raise UserError(f"study {name} not found in {W.mask_url(url)}; run `scaleplan sweep` first") from None
    sampler = make_sampler(spec, W.derived_seed(spec["seed"], worker_id, n_existing))
    return optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=make_pruner(spec))


# ----------------------------------------------------------------------------------------------
# the objective
# ----------------------------------------------------------------------------------------------

@dataclasses.dataclass
class TrialContext:
    """What an objective function gets: the trial, its hyperparameters and where to write."""

    trial: Any
    hp: dict            # lr, init_std, alpha_out, alpha_in, warmup_frac (+ weight_decay)
    width: int
    param: str          # mup | sp
    run_dir: Path
    spec: dict

    def report(self, step: int, value: float) -> None:
        """Report an intermediate validation loss; raise ``optuna.TrialPruned`` if told to stop."""
        import optuna

        if value is None or not math.isfinite(value):
            raise Diverged(f"validation loss {value} at step {step}")
        self.trial.report(float(value), int(step))
        if self.trial.should_prune():
            self.trial.set_user_attr("pruned_at_step", int(step))
            raise optuna.TrialPruned(f"pruned at step {step} (val loss {value:.4f})")


def suggest(trial, spec: dict) -> tuple[dict, int, str]:
    """Sample (hp, width, param) for one trial from the study's search space."""
    if spec["kind"] == "transfer":
        width = int(trial.suggest_categorical("width", spec["grid"]["width"]))
        param = str(trial.suggest_categorical("param", spec["grid"]["param"]))
        log2_lr = float(trial.suggest_categorical("log2_lr", spec["grid"]["log2_lr"]))
        hp = {**default_hparams(), **spec.get("transfer_hp", {}), "lr": 2.0 ** log2_lr}
        return hp, width, param
    hp = {name: trial.suggest_float(name, lo, hi, log=log) for name, (lo, hi, log) in SPACE.items()}
    if spec["tune_wd"]:
        hp["weight_decay"] = trial.suggest_float("weight_decay", *WD_SPACE[:2], log=True)
    widths = spec["widths"]
    width = int(trial.suggest_categorical("width", widths)) if len(widths) > 1 else int(widths[0])
    return hp, width, spec["param"]


def proxy_objective(ctx: TrialContext) -> float:
    """A real proxy training run (``proxy_train.train.train``); returns the final val loss."""
    from proxy_train.train import train

    cfg = train_config(ctx.spec, width=ctx.width, param=ctx.param, hp=ctx.hp)
    run = train(cfg, ctx.run_dir, on_eval=lambda step, tokens, loss: ctx.report(step, loss))
    status = str(run.get("status", "ok"))
    if status == "diverged":
        raise Diverged(str(run.get("reason") or "loss diverged"))
    if status not in ("ok", "complete", "completed", "done"):
        raise RuntimeError(f"proxy run ended with status {status!r}: {run.get('reason', '')}")
    loss = run.get("final_val_loss")
    if loss is None or not math.isfinite(float(loss)):
        raise Diverged(f"final validation loss {loss}")
    ctx.trial.set_user_attr("tokens", int(run.get("tokens") or cfg.total_steps * cfg.tokens_per_step))
    return float(loss)


def resolve_objective(name: str) -> Callable[[TrialContext], float]:
    """``proxy`` (the real trainer) or ``/path/file.py:function`` (tests use a sleeping one)."""
    if name == "proxy":
        return proxy_objective
    path, _, func = name.rpartition(":")
    if not path or not Path(path).is_file():
        raise UserError(f"objective {name!r} not found; use 'proxy' or /path/to/file.py:function")
    mod_spec = importlib.util.spec_from_file_location(f"_sweep_objective_{Path(path).stem}", path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    return getattr(mod, func)


def make_objective(study_dir: Path, spec: dict, guard: W.TargetGuard, *, worker_id: int = 0):
    """The Optuna objective: guard the target, sample, run, and turn failures into reasons."""
    import optuna

    fn = resolve_objective(spec["objective"])

    def objective(trial) -> float:
        trial.set_user_attr("worker", f"{os.uname().nodename}:{os.getpid()}:{worker_id}")
        try:
            guard.check_start(trial.study, trial)
        except W.Surplus as e:
            trial.set_user_attr("fail_reason", str(e))
            raise
        hp, width, param = suggest(trial, spec)
        trial.set_user_attr("width", width)
        trial.set_user_attr("param", param)
        run_dir = Path(study_dir) / "runs" / f"trial_{trial.number:05d}"
        trial.set_user_attr("run_dir", str(run_dir.relative_to(study_dir)))
        ctx = TrialContext(trial=trial, hp=hp, width=width, param=param, run_dir=run_dir, spec=spec)
        try:
            value = float(fn(ctx))
        except optuna.TrialPruned:
            raise
        except Diverged as e:
            trial.set_user_attr("fail_reason", f"diverged: {e}")
            raise optuna.TrialPruned(f"diverged: {e}") from None
        except KeyboardInterrupt:
            trial.set_user_attr("fail_reason", f"{W.INTERRUPTED}: stopped by Ctrl-C / SIGINT")
            raise
        except UserError as e:
            trial.set_user_attr("fail_reason", f"error: {e}")
            raise
        except Exception as e:
            trial.set_user_attr("fail_reason", f"error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
            raise
        if not math.isfinite(value):
            trial.set_user_attr("fail_reason", f"diverged: final loss {value}")
            raise optuna.TrialPruned("non-finite loss")
        return value

    return objective


# ----------------------------------------------------------------------------------------------
# running a sweep (the parent process)
# ----------------------------------------------------------------------------------------------

def run_sweep(spec: dict, study_dir: str | Path, *, trials: int, workers: int = 1, storage: str | None = None,
              command: str = "", heartbeat_interval: int = 60, grace_period: int | None = None,
              progress: bool = True, cells: list[dict] | None = None) -> dict:
    """Run (or resume) a study until it holds ``trials`` finished trials; return a summary.

    ``workers`` > 1 starts that many ``python -m proxy_train.workers`` processes (one torch
    thread each) after the study was created here once. Rerunning resumes: finished trials are
    kept, killed/interrupted ones are retried with the same parameters.

    ``cells`` (a grid, e.g. transfer-check's width x param x log2 LR) makes coverage exact: every
    cell without a finished trial is enqueued once, and the target becomes finished + pending, so
    parallel workers can neither skip a cell nor run one twice (Optuna's GridSampler alone can,
    when workers race or trials are retried).
    """
    if trials <= 0 or workers <= 0:
        raise UserError("--trials and --workers must be positive")
    study_dir = Path(study_dir)
    url = storage or journal_url_for(study_dir)
    runtime = {"heartbeat_interval": heartbeat_interval if W.is_rdb(url) else None,
               "grace_period": (grace_period or 2 * heartbeat_interval) if W.is_rdb(url) else None}
    if W.is_rdb(url) or not url.startswith("journal:"):
        W.open_storage(url)  # fail fast, before anything is written
    if study_dir.exists() and not study_dir.is_dir():
        raise UserError(f"--study {study_dir} is a file; pass a folder")
    if (study_dir / META_NAME).exists():
        read_study_meta(study_dir)  # raises a clear error on a corrupt study file
    ensure_dir(study_dir, "study folder")
    lock = StudyLock(study_dir) if not W.is_rdb(url) else _NoLock()
    with lock:
        write_or_check_meta(study_dir, spec, storage_url=url, command=command, trials=trials, runtime=runtime)
        study = load_study(study_dir, url, spec, create=True)
        repaired = W.repair_and_requeue(study, trials, fail_running=not W.is_rdb(url),
                                        count_failed=spec.get("count_failed", False))
        if cells is not None:
            trials = enqueue_missing_cells(study, cells, count_failed=spec.get("count_failed", False))
        t0 = time.time()
        if workers == 1:
            _run_inline(study_dir, url, trials, spec, progress)
        else:
            _run_processes(study_dir, url, trials, workers, spec, progress)
        study = load_study(study_dir, url, spec)
    summary = summarize(study, spec, trials)
    summary.update(study=str(study_dir), storage=W.mask_url(url), workers=workers,
                   resumed=repaired, wall_s=round(time.time() - t0, 2))
    return summary


def enqueue_missing_cells(study, cells: list[dict], *, count_failed: bool = False) -> int:
    """Enqueue each grid cell that has neither a finished nor a waiting trial; return the target
    number of finished trials (finished so far + waiting)."""
    from optuna.trial import TrialState

    names = sorted(cells[0])

    def key(params: dict):
        return tuple(params.get(n) for n in names) if all(n in params for n in names) else None

    done, waiting = set(), set()
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.WAITING:
            waiting.add(key(t.system_attrs.get("fixed_params") or t.params))
        elif W.is_counted(t, count_failed):
            done.add(key(t.params))
    for cell in cells:
        k = key(cell)
        if k not in done and k not in waiting:
            study.enqueue_trial(dict(cell), skip_if_exists=False)
            waiting.add(k)
    waiting.discard(None)
    return W.counts(study, count_failed)["finished"] + len(waiting)


class _NoLock:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


def journal_url_for(study_dir: Path) -> str:
    return W.journal_url(study_dir)


def _bar(total: int, initial: int, enabled: bool, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, initial=min(initial, total), desc=desc, unit="trial", file=sys.stderr,
                disable=not enabled, dynamic_ncols=True)


def _run_inline(study_dir: Path, url: str, trials: int, spec: dict, progress: bool) -> None:
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    import optuna

    study = load_study(study_dir, url, spec)
    c = W.counts(study, spec.get("count_failed", False))
    bar = _bar(trials, c["finished"], progress, study_dir.name)

    def on_trial(st, frozen):
        c = W.counts(st, spec.get("count_failed", False))
        bar.n = min(c["finished"], trials)
        best = W.best_value(st)
        bar.set_postfix(best=f"{best:.4f}" if best is not None else "-", pruned=c["pruned"], failed=c["failed"])
        bar.refresh()

    try:
        W.run_worker(study_dir, worker_id=0, trials=trials, storage_url=url, progress=on_trial)
    except W.TooManyErrors as e:
        raise UserError(str(e)) from None
    finally:
        bar.close()
    del optuna


def _run_processes(study_dir: Path, url: str, trials: int, workers: int, spec: dict, progress: bool) -> None:
    import signal

    logs = study_dir / "logs"
    logs.mkdir(exist_ok=True)
    env = {**os.environ, W.STORAGE_ENV: url, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    procs = []
    for i in range(workers):
        log = open(logs / f"worker_{i}.log", "a")
        procs.append((subprocess.Popen(
            [sys.executable, "-m", "proxy_train.workers", "--study", str(study_dir), "--worker-id", str(i),
             "--trials", str(trials)], stdout=log, stderr=subprocess.STDOUT, env=env), log))
    study = load_study(study_dir, url, spec)
    bar = _bar(trials, 0, progress, f"{study_dir.name} ({workers} workers)")
    try:
        while any(p.poll() is None for p, _ in procs):
            c = W.counts(study, spec.get("count_failed", False))
            bar.n = min(c["finished"], trials)
            best = W.best_value(study)
            bar.set_postfix(best=f"{best:.4f}" if best is not None else "-", running=c["running"],
                            failed=c["failed"])
            bar.refresh()
            time.sleep(1.0)
    except KeyboardInterrupt:
        for p, _ in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p, _ in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        raise
    finally:
        bar.close()
        for _, log in procs:
            log.close()
    bad = [(i, p.returncode) for i, (p, _) in enumerate(procs) if p.returncode not in (0,)]
    c = W.counts(study, spec.get("count_failed", False))
    if bad and c["finished"] >= trials:
        # A worker died (e.g. killed) but the others retried its trial and reached the target.
        for i, rc in bad:
            print(f"warning: worker {i} exited with status {rc}; its trial was retried by the others",
                  file=sys.stderr)
        return
    if bad:
        i, rc = bad[0]
        lines = (logs / f"worker_{i}.log").read_text(errors="replace").strip().splitlines()
        last = next((ln for ln in reversed(lines) if ln.startswith("error:")), lines[-1] if lines else "")
        raise UserError(f"worker {i} exited with status {rc}: {last.removeprefix('error: ')} "
                        f"(log: {logs / f'worker_{i}.log'})")


def summarize(study, spec: dict, trials: int) -> dict:
    from optuna.trial import TrialState

    c = W.counts(study, spec.get("count_failed", False))
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    out: dict[str, Any] = {"target_trials": trials, **c}
    if done:
        best = min(done, key=lambda t: t.value)
        out["best"] = {"trial": best.number, "val_loss": best.value, "params": dict(best.params),
                       "width": best.user_attrs.get("width"), "param": best.user_attrs.get("param")}
    return out


def human_summary(s: dict) -> str:
    lines = [f"study {s['study']}: {s['finished']}/{s['target_trials']} finished trials "
             f"({s['complete']} complete, {s['pruned']} pruned, {s['failed']} failed) in {s['wall_s']} s"]
    r = s.get("resumed") or {}
    if r.get("failed_running") or r.get("requeued"):
        lines.append(f"resumed: failed stale trials {r.get('failed_running')}, re-enqueued {r.get('requeued')}")
    if "best" in s:
        b = s["best"]
        ps = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in b["params"].items())
        lines.append(f"best: trial {b['trial']} val_loss={b['val_loss']:.4f} ({ps})")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# export: trials table, hparams.yaml, figures
# ----------------------------------------------------------------------------------------------

def trials_frame(study, study_dir: Path):
    """One row per trial: number, state, value, width, param, hp columns, fail_reason, duration_s."""
    import pandas as pd

    rows = []
    for t in study.get_trials(deepcopy=False):
        dur = (t.datetime_complete - t.datetime_start).total_seconds() \
            if (t.datetime_complete and t.datetime_start) else None
        row = {"number": t.number, "state": t.state.name, "value": t.value,
               "width": t.user_attrs.get("width", t.params.get("width")),
               "param": t.user_attrs.get("param", t.params.get("param")),
               "fail_reason": W.fail_reason(t) or None, "duration_s": dur,
               "retry_of": (t.system_attrs.get("retry_history") or [None])[-1],
               "pruned_at_step": t.user_attrs.get("pruned_at_step"),
               "run_dir": t.user_attrs.get("run_dir")}
        for k, v in t.params.items():
            if k not in ("width", "param"):
                row[k] = v
        rows.append(row)
    return pd.DataFrame(rows)


def best_hparams(study, meta: dict) -> dict:
    """hparams.yaml (docs/CONTRACTS.md) from the best COMPLETE trial."""
    from optuna.trial import TrialState

    spec = meta["spec"]
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    if not done:
        raise UserError(f"study {meta.get('study_name')} has no complete trial yet; run `scaleplan sweep` "
                        "with more --trials")
    best = min(done, key=lambda t: t.value)
    width = int(best.user_attrs.get("width") or best.params.get("width") or spec["widths"][0])
    param = best.user_attrs.get("param") or spec["param"]
    cfg = train_config(spec, width=width, param=param, hp={**default_hparams(), **best.params})
    p = best.params
    return {
        "parameterization": param, "base_width": width, "base_depth": spec["n_layers"],
        "base_head_dim": spec["head_dim"], "lr": p["lr"], "init_std": p["init_std"],
        "alpha_in": p["alpha_in"], "alpha_out": p["alpha_out"], "attn_mult": cfg.attn_mult,
        "warmup_frac": p["warmup_frac"], "weight_decay": p.get("weight_decay", spec["weight_decay"]),
        "wd_rule": cfg.wd_rule, "readout_zero_init": cfg.zero_readout, "query_zero_init": cfg.zero_query,
        "betas": list(cfg.betas), "vocab_size": spec["vocab_size"],
        "source": {"study": meta.get("study_name"), "trial": best.number, "val_loss": best.value,
                   "tokens": best.user_attrs.get("tokens", cfg.total_steps * cfg.tokens_per_step),
                   "corpus_sha256": spec.get("corpus_sha256")},
        "meta": {"scaleplan_version": __version__, "code_version": meta.get("code_version"),
                 "command": meta.get("command"), "made_by": "scaleplan sweep export"},
    }


def lr_loss_figure(df, title: str = "Final validation loss vs learning rate, per width"):
    """Scatter of final val loss against log2(lr), one colour per width (complete trials)."""
    import numpy as np
    import plotly.graph_objects as go

    fig = go.Figure()
    ok = df[(df["state"] == "COMPLETE") & df["value"].notna()] if len(df) else df
    lr_col = "lr" if "lr" in ok.columns else None
    for width in sorted(ok["width"].dropna().unique()) if len(ok) else []:
        part = ok[ok["width"] == width]
        x = np.log2(part[lr_col]) if lr_col else part["log2_lr"]
        fig.add_trace(go.Scatter(x=x, y=part["value"], mode="markers", name=f"width {int(width)}",
                                 text=[f"trial {n}" for n in part["number"]]))
    fig.update_layout(title=title, xaxis_title="log2 learning rate", yaxis_title="final val loss (nats/token)")
    return fig


def export(study_dir: str | Path, *, fmt: str = "csv", storage: str | None = None) -> dict:
    """Write the trials table, hparams.yaml and HTML figures into the study folder."""
    import optuna
    import warnings

    study_dir = Path(study_dir)
    meta = read_study_meta(study_dir)
    if fmt not in ("csv", "parquet"):
        raise UserError(f"unknown --format {fmt!r}; use csv or parquet")
    url = storage or os.environ.get(W.STORAGE_ENV)
    if not url:
        if meta["storage"] == "journal":
            url = W.journal_url(study_dir)
        elif "***" in meta["storage"]:
            raise UserError(f"the storage of {study_dir} needs a password; pass --storage URL or set "
                            f"{W.STORAGE_ENV}")
        else:
            url = meta["storage"]
    study = load_study(study_dir, url, meta["spec"])
    df = trials_frame(study, study_dir)
    written = []
    table = study_dir / f"trials.{fmt}"
    if fmt == "csv":
        from planner.io import atomic_write

        atomic_write(table, df.to_csv(index=False))
    else:
        import io

        from planner.io import atomic_write

        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        atomic_write(table, buf.getvalue())
    written.append(str(table))
    out: dict[str, Any] = {"study": str(study_dir), "trials": int(len(df)), "table": str(table)}
    if meta["spec"]["kind"] == "sweep":
        hp = best_hparams(study, meta)
        write_yaml(study_dir / "hparams.yaml", hp)
        written.append(str(study_dir / "hparams.yaml"))
        out["hparams"] = {k: v for k, v in hp.items() if k != "meta"}
    figs = {"lr_vs_loss": lr_loss_figure(df)}
    vis = optuna.visualization
    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    skipped = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, fn in (("history", vis.plot_optimization_history), ("parallel", vis.plot_parallel_coordinate),
                         ("slice", vis.plot_slice), ("importance", vis.plot_param_importances)):
            if len(done) < (2 if name == "importance" else 1):
                skipped[name] = "needs more complete trials"
                continue
            try:
                figs[name] = fn(study)
            except Exception as e:  # e.g. importance with a single-valued parameter
                skipped[name] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    from planner.io import atomic_write

    for name, fig in figs.items():
        path = study_dir / f"{name}.html"
        atomic_write(path, fig.to_html(include_plotlyjs="cdn", full_html=True))
        written.append(str(path))
    out["figures"] = sorted(figs)
    out["figures_skipped"] = skipped
    out["written"] = written
    return out
