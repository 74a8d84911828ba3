"""Budget mode of the ladder: the sizes and token budgets that cover the most decades of N and D
for a wall-clock budget on the machine at hand (``scaleplan ladder --budget-minutes M``).

Inputs: a base :class:`~proxy_train.ladder_plan.LadderSpec` (data, hparams, batch, seq_len, schedule,
workers' settings), a :class:`Calibration` (seconds per optimizer step and per evaluation event
measured on this machine at a few widths: :mod:`proxy_train.ladder_budget_cal`), the budget in
seconds and the number of workers. Deterministic given the calibration numbers (no timing here).

**Time model** (:class:`TimeModel`). F = training FLOPs of one optimizer step, PaLM convention
(``ModelShape.flops_per_token_palm`` x batch x seq_len: 6 x matmul params + causal attention;
Chowdhery et al. 2022, App. B). Seconds per step = a + b F and seconds per evaluation event (one
``eval_batches``-batch validation pass plus the checkpoint written with it) = a_e + b_e F, each fitted
by non-negative least squares on relative error to the calibration points; a covers the per-step
Python/launch overhead that dominates the smallest proxies. A task (``ladder_tasks.tasks_for``: one
per size with WSD, one per point with cosine) costs TASK_OVERHEAD_S (process start, model build)
+ its trained steps x a + b F + its evaluation events x (a_e + b_e F). WSD: trained steps = the
stable phase to the largest budget's branch point + every cooldown (the ladder's own accounting,
``proxy_train.schedules.wsd_branch_charges``); evaluation events = one every
``smallest steps // evals_per_run`` steps (``ladder_tasks.run_task``) + two per branch + one at start.
Wall time = the makespan of the tasks assigned largest first to the least-loaded of ``workers``
(the ladder's order); the calibration's own seconds are taken from the budget.

**Design family.** Fixed depth (the hparams' base depth: μP transfers across width), widths multiples
of the head size up to the widest calibrated one. The smallest size is the narrowest width (it
adds decades of N for almost no time); ``k`` sizes log-spaced up to the largest, k such that
neighbours are <= ``SIZE_STEP_DECADES`` apart (>= ``min_sizes``). One tokens-per-param list for all
sizes: m_lo = the smallest m giving the smallest size ``min_steps`` steps, m_hi = m_lo x 2^(t/4),
geometric in between with neighbours <= 2x apart and at least ceil(min_runs / k) values. Points over
the 4-epoch data cap are skipped (``ladder_plan.plan_points``: the same rule the ladder applies).

**Objective** (maximised, lexicographic): (1) min(dec_N, 1) + min(dec_m, 1): first reach one decade
of N and one of tokens per parameter m = D/N, where dec_X = log10(max X / min X) over the fitted
ladder points (N non-embedding, D tokens). One decade of N because ``planner.fit`` warns below it
(alpha poorly identified); one of m because at a fixed size the loss moves along B/D^beta only as far
as m varies, and the curvature of that move is what separates E (and A/N^alpha) from B/D^beta; (2)
dec_N + dec_D, rounded to 0.01, the decades the issue asks for; (3) dec_m; (4) less predicted time.
Compute ~ N_max^2 m_max: a decade of N costs two decades of compute and counts twice in (2) (N and
D), a decade of m costs one and counts once, so (2) is neutral between them and (1) decides first.
Subject to: predicted wall time <= budget, >= ``min_runs`` fitted runs (the law has 5 parameters),
>= ``min_sizes`` sizes with >= 2 points, every run >= ``min_steps`` steps, <= 4 epochs of data.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from planner.errors import UserError
from planner.shape import ModelShape
from proxy_train.ladder_plan import LadderSpec, plan_points
from proxy_train.ladder_sizes import MAX_WIDTH_IN_HEADS, trainer_size
from proxy_train.ladder_tasks import LadderTask, tasks_for
from proxy_train.schedules import cooldown_start

TASK_OVERHEAD_S = 5.0      # spawn a worker, import torch, build the model and data views (estimate)
SIZE_STEP_DECADES = 0.4    # neighbouring sizes at most 10^0.4 = 2.5x apart in N_non-emb
BUDGET_RATIO = 2.0         # neighbouring token budgets at most 2x apart
MIN_RUNS = 12              # fitted runs: the law has 5 parameters (E, A, B, alpha, beta)
MIN_SIZES = 3
MIN_STEPS = 50             # optimizer steps of the shortest run (warmup, 4 evaluations)
MAX_SIZES = 8
M_HI_STEPS_PER_OCTAVE = 4  # m_hi grid: m_lo x 2^(t/4)
MAX_M_HI_STEPS = 80        # m_hi up to m_lo x 2^20


@dataclass
class CalPoint:
    """One calibrated width: median seconds per optimizer step and per evaluation event."""
    d_model: int
    n_layers: int
    flops_per_step: float
    step_s: float
    eval_s: float


@dataclass
class Calibration:
    """What this machine measured (``proxy_train.ladder_budget_cal.calibrate``)."""
    points: list[CalPoint]
    tokens_per_step: int
    seconds: float = 0.0            # wall time the calibration itself took (taken from the budget)
    threads: int = 1
    host: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"points": [dataclasses.asdict(p) for p in self.points], "tokens_per_step": self.tokens_per_step,
                "seconds": self.seconds, "threads": self.threads, "host": dict(self.host)}

    @classmethod
    def from_dict(cls, d: dict) -> "Calibration":
        try:
            pts = [CalPoint(**p) for p in d["points"]]
            return cls(pts, int(d["tokens_per_step"]), float(d.get("seconds", 0.0)), int(d.get("threads", 1)),
                       dict(d.get("host", {})))
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(f"calibration record is malformed ({e}); delete it to recalibrate") from None


def _nnls_affine(F: np.ndarray, t: np.ndarray) -> tuple[float, float]:
    """a, b >= 0 minimising sum ((a + b F) / t - 1)^2."""
    from scipy.optimize import nnls

    M = np.stack([1.0 / t, F / t], axis=1)
    (a, b), _ = nnls(M, np.ones_like(t))
    return float(a), float(b)


@dataclass
class TimeModel:
    """Seconds per step a + b F and per evaluation event a_e + b_e F (F: FLOPs of one step)."""
    a: float
    b: float
    a_e: float
    b_e: float
    max_width: int

    @classmethod
    def fit(cls, cal: Calibration) -> "TimeModel":
        if len(cal.points) < 2:
            raise UserError("the calibration needs at least two widths to fit the time model")
        F = np.array([p.flops_per_step for p in cal.points], float)
        ts = np.array([p.step_s for p in cal.points], float)
        te = np.array([p.eval_s for p in cal.points], float)
        if not (np.all(np.isfinite(F)) and np.all(ts > 0) and np.all(te > 0)):
            raise UserError("the calibration has non-positive or non-finite timings; recalibrate")
        a, b = _nnls_affine(F, ts)
        a_e, b_e = _nnls_affine(F, te)
        return cls(a, b, a_e, b_e, max(p.d_model for p in cal.points))

    def step_s(self, s: ModelShape, tokens_per_step: int) -> float:
        return self.a + self.b * step_flops(s, tokens_per_step)

    def eval_s(self, s: ModelShape, tokens_per_step: int) -> float:
        return self.a_e + self.b_e * step_flops(s, tokens_per_step)

    def to_dict(self) -> dict:
        return {"step_s": f"{self.a:.4g} + {self.b:.4g} x F", "eval_event_s": f"{self.a_e:.4g} + {self.b_e:.4g} x F",
                "a": self.a, "b": self.b, "a_e": self.a_e, "b_e": self.b_e, "max_width": self.max_width,
                "F": "training FLOPs of one optimizer step (ModelShape.flops_per_token_palm x tokens per step)"}


def step_flops(s: ModelShape, tokens_per_step: int) -> float:
    return s.flops_per_token_palm * tokens_per_step


# ------------------------------------------------------------------------------------------ task time
def task_steps(spec: LadderSpec, task: LadderTask) -> tuple[int, int]:
    """(optimizer steps trained, evaluation events) of one task, as ``ladder_tasks.run_task`` runs it."""
    tps = spec.tokens_per_step
    steps = [max(1, math.ceil(b / tps)) for b in task.budgets]
    eval_every = max(1, steps[0] // max(1, spec.evals_per_run))
    if task.branches:
        warm_frac = spec.hp.warmup_frac if spec.hp is not None else 0.0
        warm = int(round(warm_frac * steps[0]))
        ends = [max(warm, cooldown_start(n, spec.cooldown_frac)) for n in steps]
        trained = ends[-1] + sum(n - e for n, e in zip(steps, ends))
        return trained, trained // eval_every + 2 * len(steps) + 1
    return steps[0], steps[0] // eval_every + 2


def task_seconds(spec: LadderSpec, task: LadderTask, model: TimeModel) -> float:
    trained, events = task_steps(spec, task)
    tps = spec.tokens_per_step
    return TASK_OVERHEAD_S + trained * model.step_s(task.size, tps) + events * model.eval_s(task.size, tps)


def makespan(times: list[float], workers: int) -> float:
    """Wall time of tasks given in the ladder's order (largest first), each to the least-loaded worker."""
    load = [0.0] * max(1, workers)
    for t in times:
        i = min(range(len(load)), key=lambda j: load[j])
        load[i] += t
    return max(load)


def predict_seconds(spec: LadderSpec, model: TimeModel, workers: int) -> tuple[float, list, list]:
    """(wall seconds, ladder points, skipped pairs) of ``spec`` on ``workers`` workers."""
    points, skipped = plan_points(spec)
    tasks = tasks_for(spec, points, Path("."))
    return makespan([task_seconds(spec, t, model) for t in tasks], workers), points, skipped


# ------------------------------------------------------------------------------------------ designs
@dataclass
class Design:
    sizes: list[ModelShape]
    tokens_per_param: list[float]
    seconds: float
    n_points: int
    dec_n: float
    dec_d: float
    dec_m: float

    def key(self) -> tuple:
        """The objective (module docstring), larger is better."""
        return (round(min(self.dec_n, 1.0) + min(self.dec_m, 1.0), 2), round(self.dec_n + self.dec_d, 2),
                round(self.dec_m, 2), -self.seconds)


def candidate_sizes(spec: LadderSpec, model: TimeModel, depth: int) -> list[ModelShape]:
    """Widths head_dim, 2 head_dim, ... up to the widest calibrated width, at ``depth``."""
    hd = spec.sizes[0].head_dim
    kw = dict(vocab=int(spec.data_meta["vocab_size"]), head_dim=hd, seq_len=spec.seq_len)
    top = min(model.max_width, MAX_WIDTH_IN_HEADS * hd)
    return [trainer_size(d, depth, **kw) for d in range(hd, top + 1, hd)]


def pick_sizes(cands: list[ModelShape], top: int, min_sizes: int) -> list[ModelShape]:
    """k log-spaced sizes from cands[0] to cands[top] (nearest distinct widths)."""
    lo, hi = cands[0].non_embedding_params, cands[top].non_embedding_params
    k = min(MAX_SIZES, top + 1, max(min_sizes, math.ceil(math.log10(hi / lo) / SIZE_STEP_DECADES) + 1))
    chosen: list[ModelShape] = [cands[0], cands[top]]
    for t in np.geomspace(lo, hi, k)[1:-1]:
        free = [c for c in cands[:top + 1] if c not in chosen]
        if free:
            chosen.append(min(free, key=lambda c: abs(math.log(c.non_embedding_params / t))))
    return sorted(chosen, key=lambda s: s.non_embedding_params)


def budget_list(m_lo: float, m_hi: float, n_sizes: int, min_runs: int) -> list[float]:
    n = max(3, math.ceil(min_runs / n_sizes), math.ceil(math.log(m_hi / m_lo) / math.log(BUDGET_RATIO) - 1e-9) + 1)
    return sorted({float(f"{m:.3g}") for m in np.geomspace(m_lo, m_hi, n)})


def _decades(values) -> float:
    v = [float(x) for x in values]
    return math.log10(max(v) / min(v)) if v else 0.0


def evaluate_design(spec: LadderSpec, model: TimeModel, workers: int, sizes: list[ModelShape],
                    tpp: list[float], min_sizes: int, min_runs: int) -> Design | None:
    """The design's predicted time and decades, or None when it breaks a constraint."""
    trial = dataclasses.replace(spec, sizes=sizes, tokens_per_param=tpp, flops=None)
    try:
        seconds, points, _ = predict_seconds(trial, model, workers)
    except UserError:
        return None
    ladder = [p for p in points if p.role == "ladder"]
    per_size: dict[str, int] = {}
    for p in ladder:
        per_size[p.size.name] = per_size.get(p.size.name, 0) + 1
    if len(ladder) < min_runs or sum(n >= 2 for n in per_size.values()) < min_sizes:
        return None
    used = [s for s in sizes if s.name in per_size]
    return Design(used, tpp, seconds, len(ladder), _decades(s.non_embedding_params for s in used),
                  _decades(p.tokens for p in ladder), _decades(p.tokens_per_param for p in ladder))


def all_designs(spec: LadderSpec, model: TimeModel, workers: int, *, depth: int, min_sizes: int = MIN_SIZES,
                min_runs: int = MIN_RUNS) -> list[Design]:
    """Every design of the family (module docstring) that meets the constraints other than time."""
    cands = candidate_sizes(spec, model, depth)
    max_tokens = spec.max_epochs * int(spec.data_meta.get("train_tokens", 0) or 0)
    n_lo = cands[0].non_embedding_params
    m_lo = math.ceil(spec.min_steps * spec.tokens_per_step / n_lo * 100) / 100
    out = []
    for top in range(min_sizes - 1, len(cands)):
        sizes = pick_sizes(cands, top, min_sizes)
        for t in range(2, MAX_M_HI_STEPS + 1):
            m_hi = m_lo * 2 ** (t / M_HI_STEPS_PER_OCTAVE)
            if max_tokens and m_hi * n_lo > max_tokens:
                break
            d = evaluate_design(spec, model, workers, sizes, budget_list(m_lo, m_hi, len(sizes), min_runs),
                                min_sizes, min_runs)
            if d is not None:
                out.append(d)
    return out


# ------------------------------------------------------------------------------------------ choice
@dataclass
class BudgetChoice:
    """The chosen ladder and why (recorded in study.yaml under ``ladder_budget``)."""
    budget_s: float
    workers: int
    design: Design
    calibration: Calibration
    model: TimeModel
    min_steps: int
    n_designs: int
    reused_calibration: bool = False

    @property
    def sizes_arg(self) -> str:
        return ",".join(f"{s.d_model}:{s.n_layers}" for s in self.design.sizes)

    @property
    def tokens_per_param_arg(self) -> str:
        return ",".join(f"{m:g}" for m in self.design.tokens_per_param)

    def to_dict(self) -> dict:
        d = self.design
        return {"budget_minutes": self.budget_s / 60.0, "workers": self.workers,
                "training_budget_minutes": (self.budget_s - self.calibration.seconds) / 60.0,
                "predicted_minutes": d.seconds / 60.0, "sizes": self.sizes_arg,
                "non_embedding_params": [s.non_embedding_params for s in d.sizes],
                "tokens_per_param": d.tokens_per_param, "min_steps": self.min_steps, "runs": d.n_points,
                "decades": {"N_non_embedding": d.dec_n, "D_tokens": d.dec_d, "tokens_per_param": d.dec_m},
                "designs_considered": self.n_designs, "calibration_reused": self.reused_calibration,
                "objective": "max lexicographic (min(dec_N,1)+min(dec_m,1), dec_N+dec_D, dec_m, -time); "
                             "see proxy_train/ladder_budget.py",
                "time_model": self.model.to_dict(), "calibration": self.calibration.to_dict()}


def choose(spec: LadderSpec, cal: Calibration, budget_s: float, workers: int, *, depth: int,
           min_sizes: int = MIN_SIZES, min_runs: int = MIN_RUNS) -> BudgetChoice:
    """The best design (module docstring) whose predicted wall time fits ``budget_s`` minus the
    calibration's own seconds; UserError naming the smallest budget that works when none fits."""
    spec = dataclasses.replace(spec, min_steps=max(spec.min_steps, MIN_STEPS))
    model = TimeModel.fit(cal)
    designs = all_designs(spec, model, workers, depth=depth, min_sizes=min_sizes, min_runs=min_runs)
    if not designs:
        raise UserError(f"no ladder of >= {min_runs} runs over >= {min_sizes} sizes (each >= {spec.min_steps} steps, "
                        f"<= {spec.max_epochs:g} epochs of the data) exists for this data and batch; use more "
                        "data, a smaller --batch/--seq-len or explicit --sizes/--tokens-per-param")
    avail = budget_s - cal.seconds
    fits = [d for d in designs if d.seconds <= avail]
    if not fits:
        need = (min(d.seconds for d in designs) + cal.seconds) / 60.0
        raise UserError(f"--budget-minutes {budget_s / 60:g} is too small: the cheapest ladder of >= {min_runs} runs "
                        f"over >= {min_sizes} sizes is predicted to take {need:.1f} minutes on this machine with "
                        f"{workers} worker(s) (calibration included); give --budget-minutes {math.ceil(need)} or more")
    best = max(fits, key=Design.key)
    return BudgetChoice(budget_s, workers, best, cal, model, spec.min_steps, len(designs))


def budget_spec(spec: LadderSpec, choice: BudgetChoice) -> LadderSpec:
    """The ladder spec of the choice (sizes, tokens per param, min_steps)."""
    return dataclasses.replace(spec, sizes=list(choice.design.sizes), flops=None,
                               tokens_per_param=list(choice.design.tokens_per_param), min_steps=choice.min_steps)


def choice_lines(choice: BudgetChoice) -> list[str]:
    """Human-readable summary: calibration, time model, the choice and its predicted time."""
    cal, d = choice.calibration, choice.design
    lines = [f"budget {choice.budget_s / 60:g} min on {choice.workers} worker(s): calibration took "
             f"{cal.seconds:.0f} s ({cal.threads} thread, {cal.tokens_per_step} tokens/step)"]
    for p in cal.points:
        lines.append(f"  width {p.d_model:>5} x {p.n_layers} layers: {p.step_s * 1e3:8.2f} ms/step "
                     f"({cal.tokens_per_step / p.step_s:,.0f} tokens/s), eval+ckpt {p.eval_s * 1e3:.1f} ms")
    m = choice.model
    lines.append(f"  time model: step {m.a * 1e3:.3g} ms + {m.b:.3g} s/FLOP x F; eval event {m.a_e * 1e3:.3g} ms + "
                 f"{m.b_e:.3g} s/FLOP x F")
    lines.append(f"chosen ({choice.n_designs} designs considered): sizes {choice.sizes_arg}; tokens/param "
                 f"{choice.tokens_per_param_arg}; {d.n_points} runs, >= {choice.min_steps} steps each")
    lines.append(f"  decades: N_non-emb {d.dec_n:.2f}, D {d.dec_d:.2f}, tokens/param {d.dec_m:.2f}; "
                 f"predicted {d.seconds / 60:.1f} min of training (+{cal.seconds / 60:.1f} calibration) "
                 f"<= {choice.budget_s / 60:g} min")
    return lines
