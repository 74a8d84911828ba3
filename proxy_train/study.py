"""A study: its spec (the options that define it) and its folder record ``study.yaml``.

The bottom of the sweep stack (``study`` < ``sweep_space`` < ``sweep_storage`` <
``sweep_objective`` < ``workers`` < ``sweep`` < ``sweep_export`` / ``sweep_summary``; ``transfer``
on top): it imports no other sweep module.

A *study folder* holds everything a sweep makes: ``study.yaml`` (written and read by
:class:`StudyMeta` only: the options as a :class:`StudySpec`, corpus hash, code version, proxy
config, storage with any password masked), the Optuna journal ``optuna.journal`` (default storage),
one proxy run per trial under ``runs/trial_NNNNN/run.json``, worker logs, and after ``scaleplan
sweep export`` the trials table, ``hparams.yaml`` and the figures.

Conventions:

* ``param`` is ``mup`` or ``sp``, or ``both`` for the μTransfer grid (then each trial samples it).
* ``steps`` xor ``tokens`` sets each proxy run's length; ``total_steps`` is the resolved step count
  (the pruners' resource unit).
* Default base hyperparameters (:data:`DEFAULT_HPARAMS`, natural units): lr 2^-9 (the μP optimum at
  widths 64-512 of /work/shared/notes/mup-and-sweeps.md §4.5), init std 0.02 and multipliers 1
  (nanoGPT-mup), warmup 5% of the run.
* Keys of a spec that may change between reruns of the same study: :data:`MUTABLE`; any other
  difference is refused (a study mixes no settings).
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from planner import __version__
from planner.errors import UserError
from planner.io import read_yaml, to_json, write_yaml
from planner.schema import check_record, check_value
from proxy_train.host import pid_alive

META_NAME = "study.yaml"
SAMPLERS = ("tpe", "cmaes", "gp", "random")
PRUNERS = ("hyperband", "asha", "median", "none")
KINDS = ("sweep", "transfer")
DEFAULT_HPARAMS = {"lr": 2.0 ** -9, "init_std": 0.02, "alpha_out": 1.0, "alpha_in": 1.0, "warmup_frac": 0.05}
# Spec keys that may change between reruns of the same study (all others must match).
MUTABLE = ("trials", "workers")


@dataclass
class StudySpec:
    """The options that define a study; stored as the ``spec`` block of study.yaml (same keys)."""

    data: str                      # resolved data folder
    vocab_size: int                # the data's padded model vocab
    widths: list[int]
    total_steps: int               # optimizer steps of one proxy run
    kind: str = "sweep"            # sweep | transfer
    corpus_sha256: str | None = None
    param: str = "mup"             # mup | sp | both (transfer grid)
    steps: int | None = None
    tokens: int | None = None
    sampler: str = "tpe"           # SAMPLERS, or "grid" (transfer)
    pruner: str = "hyperband"
    seed: int = 0
    n_layers: int = 2
    batch: int = 16
    seq_len: int = 128
    head_dim: int = 32
    schedule: str = "cosine"
    tune_wd: bool = False
    weight_decay: float = 0.0
    objective: str = "proxy"       # proxy | /path/file.py:function (tests)
    grid: dict | None = None       # transfer: {"width": [...], "param": [...], "log2_lr": [...]}
    count_failed: bool = False     # transfer: a trial failed by a real error still visits its cell
    base_width: int | None = None  # None: every trial at m_d = 1 (base_width = its width)
    fixed: dict = field(default_factory=dict)  # extra TrainConfig fields
    transfer_hp: dict | None = None  # transfer: the fixed non-LR hyperparameters

    # The order of the keys in study.yaml (as written since scaleplan 0.1.0).
    _ORDER = ("kind", "data", "corpus_sha256", "vocab_size", "widths", "param", "steps", "tokens", "sampler",
              "pruner", "seed", "n_layers", "batch", "seq_len", "head_dim", "schedule", "tune_wd", "weight_decay",
              "objective", "grid", "count_failed", "base_width", "fixed", "total_steps", "transfer_hp")

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self._ORDER}
        if d["transfer_hp"] is None:
            del d["transfer_hp"]
        return d

    @classmethod
    def from_dict(cls, d: Any, where: str = "study.yaml") -> "StudySpec":
        """The spec of a study.yaml, every key checked (planner/schema.py: types, ranges, choices),
        then every width as a proxy config (proxy_train.limits); UserError otherwise."""
        if not isinstance(d, dict):
            raise UserError(f"{where}: spec is not a mapping; use another --study folder")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(str(k) for k in set(d) - known)
        missing = sorted(f.name for f in dataclasses.fields(cls)
                         if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                         and f.name not in d)
        if unknown or missing:
            raise UserError(f"{where}: spec has unknown keys {unknown} / lacks {missing}; it was made by another "
                            "scaleplan version: use a new --study folder")
        fix = "the study file was edited or damaged; use a new --study folder"
        typed = tuple(k for k in known if k not in _SPEC_MAPPINGS)
        check_record(cls, {k: v for k, v in d.items() if k in typed}, f"{where} spec", fix=fix, rules=_SPEC_RULES,
                     fields=typed)
        for k in _SPEC_MAPPINGS:
            if k in d and d[k] is not None:
                check_value(d[k], dict[str, object], f"{where} spec.{k}", fix)
        bad = sorted(set(d.get("fixed") or {}) - _train_fields())
        if bad:
            raise UserError(f"{where} spec.fixed has unknown training options {bad}; {fix}")
        spec = cls(**d)
        for w in spec.widths:
            for p in spec.parameterizations:
                try:
                    train_config(spec, width=w, param=p, hp=DEFAULT_HPARAMS)
                except (TypeError, ValueError) as e:
                    raise UserError(f"{where} spec does not make a proxy config ({e}); {fix}") from None
        return spec

    @property
    def parameterizations(self) -> tuple[str, ...]:
        return ("mup", "sp") if self.param == "both" else (self.param,)

    def differs_from(self, other: "StudySpec") -> str | None:
        """The first setting (``key=old (now new)``) that differs, ignoring :data:`MUTABLE`."""
        a, b = json.loads(to_json(self.to_dict())), json.loads(to_json(other.to_dict()))
        for k in sorted(set(a) | set(b)):
            if k not in MUTABLE and a.get(k) != b.get(k):
                return f"{k}={a.get(k)!r} (now {b.get(k)!r})"
        return None


#: Ranges and choices of the spec's scalar keys (planner/schema.py rules); the mappings are checked apart.
_SPEC_MAPPINGS = ("grid", "fixed", "transfer_hp")
_SPEC_RULES: dict[str, Any] = {
    "vocab_size": "positive", "widths": "positive", "total_steps": "nonneg", "steps": "positive",
    "tokens": "positive", "seed": "nonneg", "n_layers": "positive", "batch": "positive", "seq_len": "positive",
    "head_dim": "positive", "weight_decay": "nonneg", "base_width": "positive", "kind": KINDS,
    "param": ("mup", "sp", "both"), "sampler": (*SAMPLERS, "grid"), "pruner": PRUNERS,
}


def _train_fields() -> set[str]:
    from proxy_train.config import TrainConfig

    return {f.name for f in dataclasses.fields(TrainConfig)}


def check_study_folder(study_dir: str | Path) -> None:
    """UserError when ``study_dir`` holds something else than a study (a data folder, a run folder):
    a sweep would write its journal and runs into it."""
    p = Path(study_dir)
    if not p.is_dir() or is_study(p):
        return
    if (p / "meta.json").is_file() and (p / "train.bin").exists():
        raise UserError(f"{p} is a data folder (meta.json, train.bin); give --study a folder of its own")
    if (p / "run.json").is_file():
        raise UserError(f"{p} is a run folder (run.json); give --study a folder of its own")
    if (p / "plan.yaml").is_file() or (p / "fit.json").is_file():
        raise UserError(f"{p} holds a plan or fit but no {META_NAME}; give --study a new folder")


def _check_objective(objective: str) -> None:
    """``proxy`` or ``/path/file.py:function`` (a hidden option for tests) naming an existing .py file."""
    if objective == "proxy":
        return
    path, _, func = objective.rpartition(":")
    if not (path.endswith(".py") and Path(path).is_file() and func.isidentifier()):
        raise UserError(f"objective {objective!r} is not 'proxy' or an existing /path/to/file.py:function")


def make_spec(*, data: str | Path, widths: list[int], param: str = "mup", steps: int | None = None,
              tokens: int | None = None, sampler: str = "tpe", pruner: str = "hyperband", seed: int = 0,
              n_layers: int = 2, batch: int = 16, seq_len: int = 128, head_dim: int = 32,
              schedule: str = "cosine", tune_wd: bool = False, weight_decay: float = 0.0,
              objective: str = "proxy", kind: str = "sweep", grid: dict | None = None,
              count_failed: bool = False, base_width: int | None = None, fixed: dict | None = None,
              transfer_hp: dict | None = None) -> StudySpec:
    """Validate the options (and the data folder) and return the study spec."""
    from proxy_train.data import TokenData

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
    _check_objective(objective)
    # the proxy objective trains on the tokens: check every token file once here, not in each failing
    # trial; a custom objective (tests) may read only the header
    corpus = TokenData(data).meta if objective == "proxy" else TokenData.read_meta(data, need=("vocab_size",))
    spec = StudySpec(
        kind=kind, data=str(Path(data).resolve()), corpus_sha256=corpus.get("sha256"),
        vocab_size=int(corpus["vocab_size"]), widths=[int(w) for w in widths], param=param, steps=steps, tokens=tokens,
        sampler=sampler, pruner=pruner, seed=int(seed), n_layers=int(n_layers), batch=int(batch),
        seq_len=int(seq_len), head_dim=int(head_dim), schedule=schedule, tune_wd=bool(tune_wd),
        weight_decay=float(weight_decay), objective=objective, grid=grid, count_failed=bool(count_failed),
        base_width=base_width, fixed=fixed or {}, total_steps=0, transfer_hp=transfer_hp)
    # Every width must make a valid proxy model (e.g. divisible by the head size).
    for w in spec.widths:
        for p in spec.parameterizations:
            train_config(spec, width=w, param=p, hp=DEFAULT_HPARAMS)
    spec.total_steps = train_config(spec, width=spec.widths[0], param=spec.parameterizations[0],
                                    hp=DEFAULT_HPARAMS).total_steps
    return spec


def train_config(spec: StudySpec, *, width: int, param: str, hp: dict, run_seed: int | None = None):
    """The proxy ``TrainConfig`` of one trial: fixed options from the spec, ``hp`` (lr, init_std,
    alpha_out, alpha_in, warmup_frac, optional weight_decay) from the sampler."""
    from proxy_train.config import TrainConfig

    cfg = TrainConfig(
        data=spec.data, d_model=int(width), n_layers=spec.n_layers, head_dim=spec.head_dim,
        parameterization=param, base_width=int(spec.base_width or width), lr=float(hp["lr"]),
        init_std=float(hp["init_std"]), alpha_out=float(hp["alpha_out"]), alpha_in=float(hp["alpha_in"]),
        warmup_frac=float(hp["warmup_frac"]), weight_decay=float(hp.get("weight_decay", spec.weight_decay)),
        steps=spec.steps, tokens=spec.tokens, batch=spec.batch, seq_len=spec.seq_len, schedule=spec.schedule,
        seed=int(spec.seed if run_seed is None else run_seed), threads=1, progress=False,
        ckpt_every=10 ** 9,  # a retried trial starts in a fresh folder: mid-run checkpoints are waste
        **dict(spec.fixed or {}),
    )
    return cfg.validate()


# ----------------------------------------------------------------------------------------------
# study.yaml
# ----------------------------------------------------------------------------------------------

@dataclass
class Runtime:
    """Heartbeat settings of an RDB storage (seconds; None for the journal file)."""

    heartbeat_interval: int | None = None
    grace_period: int | None = None

    def to_dict(self) -> dict[str, int | None]:
        return dataclasses.asdict(self)


@dataclass
class StudyMeta:
    """The contents of ``study.yaml``: the spec plus provenance and the storage it runs in."""

    spec: StudySpec
    study_name: str
    storage: str                   # "journal" (the file in the folder) or the URL, password masked
    command: str = ""
    created: str = ""
    scaleplan_version: str = __version__
    code_version: str = ""
    corpus_sha256: str | None = None
    trials: int = 0                # the target of the last command
    runtime: Runtime = field(default_factory=Runtime)
    proxy_config: dict = field(default_factory=dict)  # TrainConfig of the first width (for reading)
    last_command: str | None = None
    extra: dict = field(default_factory=dict)  # keys of a newer version, kept as they are

    _ORDER = ("scaleplan_version", "code_version", "command", "created", "study_name", "storage", "corpus_sha256",
              "trials", "runtime", "spec", "proxy_config", "last_command")

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self._ORDER}
        d["spec"], d["runtime"] = self.spec.to_dict(), self.runtime.to_dict()
        if self.last_command is None:
            del d["last_command"]
        return {**d, **self.extra}

    @classmethod
    def from_dict(cls, d: dict, where: str = META_NAME) -> "StudyMeta":
        known = set(cls._ORDER)
        kw = {k: v for k, v in d.items() if k in known}
        fix = "the study file was edited or damaged; use a new --study folder"
        scalars = ("study_name", "storage", "scaleplan_version", "corpus_sha256", "trials")
        check_record(cls, {"study_name": "", "storage": "journal", **{k: d[k] for k in scalars if k in d}},
                     where, fix=fix, rules={"trials": "nonneg"}, fields=scalars)
        for k in ("command", "created", "code_version", "last_command"):  # provenance: any text
            if d.get(k) is not None and not isinstance(d[k], str):
                raise UserError(f"{where} {k} must be text, got {type(d[k]).__name__}; {fix}")
        if d.get("proxy_config") is not None:
            check_value(d["proxy_config"], dict[str, object], f"{where} proxy_config", fix)
        kw["spec"] = StudySpec.from_dict(d["spec"], where)
        rt = d.get("runtime") or {}
        kw["runtime"] = Runtime(**check_record(Runtime, rt, f"{where} runtime", fix=fix,
                                               rules={"heartbeat_interval": "positive", "grace_period": "positive"}))
        kw.setdefault("study_name", "")
        kw.setdefault("storage", "journal")
        return cls(**kw, extra={k: v for k, v in d.items() if k not in known})

    def write(self, study_dir: str | Path) -> Path:
        return write_yaml(Path(study_dir) / META_NAME, self.to_dict())


def is_study(study_dir: str | Path) -> bool:
    return (Path(study_dir) / META_NAME).exists()


def read_study_meta(study_dir: str | Path) -> StudyMeta:
    path = Path(study_dir) / META_NAME
    if not path.exists():
        raise UserError(f"{study_dir} is not a study folder (no {META_NAME}); run `scaleplan sweep` "
                        "or `scaleplan transfer-check` first, or check the path")
    meta = read_yaml(path, "study file")
    if not isinstance(meta, dict) or "spec" not in meta:
        raise UserError(f"{path} is not a scaleplan study file; use another --study folder")
    return StudyMeta.from_dict(meta, str(path))


def code_version() -> str:
    """scaleplan version plus the git commit of the checkout (``+dirty`` with local changes)."""
    root = Path(__file__).resolve().parents[1]
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        rev = ""
    return f"{__version__}+{rev}" if rev else __version__


def write_or_check_meta(study_dir: Path, spec: StudySpec, *, storage: str, command: str, trials: int,
                        runtime: Runtime) -> StudyMeta:
    """Create ``study.yaml`` or check that the existing one was made with the same options.

    ``storage`` is the label to record: ``journal`` or the URL with its password masked.
    """
    if is_study(study_dir):
        meta = read_study_meta(study_dir)
        diff = meta.spec.differs_from(spec)
        if diff is None and meta.storage != storage:
            diff = f"storage={meta.storage!r} (now {storage!r})"
        if diff:
            raise UserError(f"study {study_dir} was created with {diff}; use a new --study folder or "
                            "the same options")
        meta.trials, meta.runtime, meta.last_command = trials, runtime, command
    else:
        first = train_config(spec, width=spec.widths[0], param=spec.parameterizations[0], hp=DEFAULT_HPARAMS)
        meta = StudyMeta(
            spec=spec, study_name=study_dir.resolve().name, storage=storage, command=command,
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"), code_version=code_version(),
            corpus_sha256=spec.corpus_sha256, trials=trials, runtime=runtime, proxy_config=first.to_dict())
    meta.write(study_dir)
    return meta


class StudyLock:
    """A pid file that stops two ``scaleplan sweep`` commands from running one journal study.

    The file holds pids, one a line: the ``scaleplan sweep`` process that owns it first, then every
    worker process it started (:meth:`add_workers`); the study is busy while any of them lives.
    """

    def __init__(self, study_dir: Path):
        self.path = study_dir / ".sweep.lock"

    def pids(self) -> list[int]:
        """The pids the lock file names (owner first); [] when there is none or it is unreadable."""
        try:
            return [int(t) for t in self.path.read_text().split() if t.isdigit()]
        except OSError:
            return []

    def __enter__(self):
        busy = [pid for pid in self.pids() if pid != os.getpid() and pid_alive(pid)]
        if busy:
            raise UserError(f"study {self.path.parent} is being run by process {busy[0]}; wait for it, "
                            "stop it, or use more --workers in one command")
        self.path.write_text(str(os.getpid()))
        return self

    def add_workers(self, pids: list[int]) -> None:
        """Name the worker processes too (after the owner's pid)."""
        self.path.write_text("\n".join(str(p) for p in [os.getpid(), *pids]) + "\n")

    def __exit__(self, *exc):
        try:
            if self.pids()[:1] == [os.getpid()]:
                self.path.unlink()
        except OSError:
            pass


