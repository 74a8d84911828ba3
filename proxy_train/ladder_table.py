"""The runs table of a ladder (``runs.csv``): one ``RunRecord`` per point whose run.json exists.

Conventions (docs/CONTRACTS.md "runs table"):
* Columns ``RUNS_COLUMNS``, in that order; N, tokens, FLOPs and losses are the trainer's own, from
  run.json (loss in nats/token; ``flops`` = 6 N_total D); ``lr`` is the hidden-matrix LR after μP
  transfer; ``run_dir`` is relative to the study folder (a queued ladder: to its runs root);
  ``tokens_per_s``, ``mfu`` and ``device`` come last (:mod:`proxy_train.device`; ``mfu`` is empty
  where no peak FLOP/s is known, e.g. on CPU).
* **compute_used**: FLOPs (6 N_total x tokens) this row added to the ladder. WSD rows of one size
  share the stable phase: a branch is charged the stable tokens between the previous branch point
  and its own, plus its cooldown (``proxy_train.schedules.wsd_branch_charges``); summed over a size
  this is the stable phase once plus all cooldowns. Other rows are charged their own ``flops``.
* The table is rebuilt from the run.json files (each written atomically by the trainer), so a
  killed ladder leaves no corrupt row; a ladder run as a work queue rebuilds it from the records in
  its Optuna storage instead (``rows_from_records``). Rows sort ladder first, then by N and tokens.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from planner.errors import UserError
from planner.io import atomic_write, read_json
from proxy_train.ladder_plan import LadderSpec, Point
from proxy_train.ladder_tasks import run_dir
from proxy_train.schedules import wsd_branch_charges

RUNS_COLUMNS = ["run_id", "total_params", "non_embedding_params", "tokens", "flops", "final_val_loss",
                "final_train_loss", "schedule", "status", "d_model", "n_layers", "compute_used",
                "role", "size", "tokens_per_param", "n_heads", "head_dim", "d_ffn", "steps", "batch",
                "seq_len", "lr", "warmup_steps", "cooldown_frac", "flops_with_attention", "wall_time_s",
                "run_dir", "tokens_per_s", "mfu", "device"]


@dataclass
class RunRecord:
    """One row of runs.csv: the brief of a point's run.json (``to_dict`` gives exactly RUNS_COLUMNS)."""
    run_id: str
    total_params: int
    non_embedding_params: int
    tokens: int
    flops: float
    final_val_loss: float | None
    final_train_loss: float | None
    schedule: str
    status: str | None
    d_model: int
    n_layers: int
    compute_used: float | None
    role: str
    size: str
    tokens_per_param: float
    n_heads: int
    head_dim: int
    d_ffn: int
    steps: int | None
    batch: int
    seq_len: int
    lr: float | None
    warmup_steps: int | None
    cooldown_frac: float | None
    flops_with_attention: float | None
    wall_time_s: float | None
    run_dir: str
    tokens_per_s: float | None = None      # training steps only (run.json tokens_per_s)
    mfu: float | None = None               # model FLOPs utilisation (proxy_train.device; None: no known peak)
    device: str | None = None
    stable_end_tokens: int | None = None   # WSD branches: where the branch left the stable phase (not a column)

    @classmethod
    def from_run(cls, run: dict, p: Point, spec: LadderSpec, run_dir: str) -> "RunRecord":
        """The row of point ``p`` from its run.json ``run`` (compute_used is charged later)."""
        groups = {g["kind"]: g for g in run.get("hyperparameters", {}).get("groups", [])}
        hidden_lr = next((g["lr"] for k, g in groups.items() if k.startswith("hidden")), None)
        branch = run.get("branch", {})
        return cls(
            run_id=f"{p.role}-{p.size.name}-t{p.tokens}-{spec.schedule}", total_params=run["total_params"],
            non_embedding_params=run["non_embedding_params"], tokens=run["tokens"], flops=run["flops"],
            final_val_loss=run.get("final_val_loss"), final_train_loss=run.get("final_train_loss"),
            schedule=spec.schedule, status=run.get("status"), d_model=run["d_model"], n_layers=run["n_layers"],
            compute_used=None, role=p.role, size=p.size.name,
            tokens_per_param=run["tokens"] / run["non_embedding_params"], n_heads=p.size.n_heads,
            head_dim=p.size.head_dim, d_ffn=p.size.d_ffn, steps=run.get("steps"), batch=spec.batch,
            seq_len=spec.seq_len, lr=hidden_lr,
            warmup_steps=branch.get("warmup_steps", run.get("hyperparameters", {}).get("base", {}).get("warmup_steps")),
            cooldown_frac=spec.cooldown_frac if spec.schedule == "wsd" else None,
            flops_with_attention=run.get("flops_with_attention"), wall_time_s=run.get("wall_time_s"),
            run_dir=run_dir, tokens_per_s=run.get("tokens_per_s"), mfu=(run.get("throughput") or {}).get("mfu"),
            device=run.get("device"), stable_end_tokens=branch.get("stable_end_tokens"))

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in RUNS_COLUMNS}


def _of_budget(run: dict | None, tokens: int) -> dict | None:
    """``run`` when it is the record of this budget, else None."""
    if not isinstance(run, dict) or (run.get("config") or {}).get("tokens") != tokens:
        return None  # a record of another budget (an older ladder in this folder); a diverged run keeps its budget here
    return run


def _read_run(path: Path, tokens: int) -> dict | None:
    """run.json at ``path`` when it is the record of this budget, else None."""
    if not path.is_file():
        return None
    try:
        run = read_json(path)
    except UserError:
        return None  # cannot happen with atomic writes; a foreign file is skipped, not trusted
    return _of_budget(run, tokens)


def charge_compute(rows: list[RunRecord]) -> None:
    """Fill ``compute_used`` (see the module docstring)."""
    by_size: dict[str, list[RunRecord]] = {}
    for r in rows:
        if r.stable_end_tokens is not None and r.role == "ladder":
            by_size.setdefault(r.size, []).append(r)
        else:
            r.compute_used = r.flops
    for rs in by_size.values():
        charges = wsd_branch_charges([(r.tokens, r.stable_end_tokens) for r in rs])
        for r, (stable, cooldown) in zip(rs, charges):
            r.compute_used = 6.0 * r.total_params * (stable + cooldown)


def collect_rows(spec: LadderSpec, points: list[Point], study: Path) -> list[RunRecord]:
    """One row per point whose run.json exists (docs/CONTRACTS.md runs-table columns + extras)."""
    rows = []
    for p in points:
        d = run_dir(spec, study, p)
        run = _read_run(d / "run.json", p.tokens)
        if run is not None:
            rows.append(RunRecord.from_run(run, p, spec, str(d.relative_to(study))))
    return _finish_rows(rows)


def _finish_rows(rows: list[RunRecord]) -> list[RunRecord]:
    charge_compute(rows)
    rows.sort(key=lambda r: (r.role != "ladder", r.non_embedding_params, r.tokens))
    return rows


def rows_from_records(spec: LadderSpec, points: list[Point], records: dict[str, dict]) -> list[RunRecord]:
    """The rows of ``collect_rows`` from run records held elsewhere than on disk (the ladder queue's
    trial user attrs, :mod:`proxy_train.ladder_queue`): ``records`` maps a run folder relative to the
    runs root (``runs/<size>/branch_<tokens>``) to its run.json dict (the curve may be left out)."""
    rows = []
    root = Path("/")
    for p in points:
        rel = str(run_dir(spec, root, p).relative_to(root))
        run = _of_budget(records.get(rel), p.tokens)
        if run is not None:
            rows.append(RunRecord.from_run(run, p, spec, rel))
    return _finish_rows(rows)


def write_table(rows: list[RunRecord], study: Path, parquet: bool = False) -> Path:
    import pandas as pd

    df = pd.DataFrame([r.to_dict() for r in rows], columns=RUNS_COLUMNS)
    path = atomic_write(study / "runs.csv", df.to_csv(index=False))
    if parquet:
        import io

        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        atomic_write(study / "runs.parquet", buf.getvalue())
    return path
