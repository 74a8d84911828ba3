"""Multi-phase runs: each phase's length, batch, LR segment, continuation mode and data mixture,
resolved against the plan, and the learning rate at every token of the run (one pure function).

Conventions. A phase's length is ``train_iters`` optimizer steps at its ``global_batch`` (sequences
of the plan's ``seq_len``) or ``tokens`` (rounded up to whole steps); positions on the run are in
samples (sequences) and tokens from the start of the whole run. ``lr_at_tokens(phases, t)`` is the LR
of the update that starts at token ``t`` (Megatron-LM steps its scheduler after each update, so
update i uses the LR of the samples consumed before it: training.py ``train_step``).

How a phase follows the previous one (``mode``):

* ``continue``: the same LR schedule goes on (its warmup and decay still measured from where its
  segment began), and the optimizer state (Adam moments) and the data position are kept. Fields the
  phase gives (``lr``, ``min_lr``, ``warmup_iters``, ``decay_iters``, ``decay_style``) replace the
  segment's, still measured from the segment's start, in steps at the batch of the phase that began
  it (LLM-jp's second epoch changed the decay length after the decay had ended).
* ``rewarm``: a new LR segment starts at the phase's first step (warmup from 0 to ``lr``, then the
  decay); optimizer state and data position are kept.
* ``reset``: a fresh optimizer, step counter and data position from the previous weights (a
  finetune-style restart), only when a phase asks for it.

Default: ``continue``, or ``rewarm`` when the phase gives its own ``lr`` or ``warmup_iters``. Unset
segment fields come from the segment before (the first from the plan's training recipe); the decay
length defaults to the end of the last phase that continues the segment, and may exceed it (the
phase then stops mid-decay, as Crystal's phase 1 does: LLM360/crystalcoder-train
pretrain/params/phase1/params.yaml, ``decay_steps`` 294,337 over ``max_steps`` 79,721).

LR of a segment, with m samples since its start, W warmup and D decay samples (Megatron-LM's
``OptimizerParamScheduler.get_lr``, megatron/core/optimizer_param_scheduler.py at d98e8a64, with
its counter at the segment's start): ``lr * m / W`` while m <= W (W > 0); ``lr`` for constant;
``min_lr`` once m > W + D; else with r = (m - W) / D: linear ``min + (lr - min)(1 - r)``, cosine
``min + (lr - min)(1 + cos(pi r))/2``; inverse-square-root ``max(min, lr sqrt(max(W, 1) / max(m, 1)))``.

Phase lengths must add up to the plan's tokens: at least the plan's tokens and less than one step
per phase more (each phase rounds up to whole steps, as the plan does); the last phase may leave its
length out and take the rest.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from planner.errors import UserError
from planner.plan.sections import PHASE_DECAY_STYLES, check_phases

#: Segment fields a phase may set, and the unit conversion each needs (steps -> samples).
SEGMENT_FIELDS = ("lr", "min_lr", "warmup_iters", "decay_iters", "decay_style")
PHASES_FIX = "fix the phases (see `scaleplan plan --help`, --phases)"


@dataclass(frozen=True)
class LRSegment:
    """One warmup + decay, on the run's sample axis (module docstring for the formula)."""

    start_sample: int
    lr: float
    min_lr: float
    warmup_samples: int
    decay_samples: int
    style: str

    def lr_at(self, sample: Any) -> np.ndarray:
        """The segment's LR at ``sample`` (an array or a number; samples from the run's start)."""
        m = np.asarray(sample, dtype=float) - self.start_sample
        W, D, hi, lo = float(self.warmup_samples), float(self.decay_samples), self.lr, self.min_lr
        if self.style == "constant":  # Megatron tests constant before the end of the decay
            after = np.full_like(m, hi)
        elif self.style == "inverse-square-root":
            after = np.where(m > W + D, lo, np.maximum(lo, hi * np.sqrt(max(W, 1.0) / np.maximum(m, 1.0))))
        else:
            r = np.clip((m - W) / D, 0.0, 1.0)
            coeff = 1.0 - r if self.style == "linear" else 0.5 * (np.cos(np.pi * r) + 1.0)
            after = np.where(m > W + D, lo, lo + coeff * (hi - lo))
        return np.where(m <= W, hi * m / W, after) if W > 0 else after


@dataclass(frozen=True)
class Phase:
    """One resolved phase (module docstring): where it sits on the run and the LR segment it uses."""

    index: int  # 1-based
    name: str
    mode: str  # start (the first phase) | continue | rewarm | reset
    global_batch: int
    seq_len: int
    train_iters: int
    start_sample: int
    counter_start_sample: int  # where the step counter and data position last restarted (0 or a reset)
    counter_start_iter: int  # steps run on that counter before this phase
    segment: LRSegment
    segment_phase: int  # index of the phase that began the segment
    segment_batch: int  # that phase's global batch: the unit of a continue phase's warmup/decay steps
    changed: tuple[str, ...]  # segment fields a continue phase replaced
    data: tuple[tuple[float, str], ...]  # (weight, Megatron prefix); empty: the plan's data path

    @property
    def samples(self) -> int:
        return self.train_iters * self.global_batch

    @property
    def end_sample(self) -> int:
        return self.start_sample + self.samples

    @property
    def start_token(self) -> int:
        return self.start_sample * self.seq_len

    @property
    def end_token(self) -> int:
        return self.end_sample * self.seq_len

    @property
    def tokens(self) -> int:
        return self.samples * self.seq_len


@dataclass(frozen=True)
class RunDefaults:
    """The run-level defaults phases fall back to (the plan's training recipe)."""

    tokens: int
    global_batch: int
    seq_len: int
    lr: float
    min_lr: float
    warmup_iters: int
    style: str


def resolve_plan_phases(plan) -> list[Phase]:
    """The plan's phases resolved against its tokens and training recipe ([] when it has none)."""
    t = plan.training
    style = t.schedule if t.schedule in PHASE_DECAY_STYLES else "linear"
    base = RunDefaults(tokens=int(plan.tokens), global_batch=t.global_batch, seq_len=t.seq_len, lr=t.lr,
                 min_lr=t.min_lr, warmup_iters=t.warmup_iters, style=style)
    return resolve_phases(plan.phases, base)


def resolve_phases(specs: list[dict[str, Any]], base: RunDefaults) -> list[Phase]:
    """Lengths, modes, LR segments and mixtures of ``specs`` (PhaseSpec mappings) in order."""
    specs = check_phases(list(specs or []))
    if not specs:
        return []
    iters = _lengths(specs, base)
    modes = [_mode(i, s) for i, s in enumerate(specs)]
    starts = np.concatenate([[0], np.cumsum([n * _batch(s, base) for n, s in zip(iters, specs)])]).astype(int)
    phases: list[Phase] = []
    for i, s in enumerate(specs):
        phases.append(_phase(i, s, modes, iters, starts, base, phases[-1] if phases else None))
    return phases


def _batch(spec: dict[str, Any], base: RunDefaults) -> int:
    return int(spec.get("global_batch") or base.global_batch)


def _lengths(specs: list[dict[str, Any]], base: RunDefaults) -> list[int]:
    """Steps per phase; the total checked against the plan's tokens (module docstring)."""
    out: list[int] = []
    done = 0
    for i, s in enumerate(specs):
        step = _batch(s, base) * base.seq_len
        if s.get("tokens") is not None and s.get("train_iters") is not None:
            raise UserError(f"phase {i + 1} gives both tokens and train_iters; give one ({PHASES_FIX})")
        if s.get("train_iters") is not None:
            n = int(s["train_iters"])
        elif s.get("tokens") is not None:
            n = math.ceil(int(s["tokens"]) / step)
        elif i == len(specs) - 1:
            n = math.ceil((base.tokens - done) / step)
            if n < 1:
                raise UserError(f"the phases before the last already train {done:,} of the plan's {base.tokens:,} "
                                f"tokens; the last phase has nothing left ({PHASES_FIX})")
        else:
            raise UserError(f"phase {i + 1} has no length; give tokens or train_iters (only the last phase may "
                            f"leave it out and take the rest) ({PHASES_FIX})")
        out.append(n)
        done += n * step
    slack = sum(_batch(s, base) * base.seq_len for s in specs)
    if not base.tokens <= done < base.tokens + slack:
        raise UserError(f"the phases add up to {done:,} tokens but the plan trains {base.tokens:,} "
                        f"({done - base.tokens:+,}); make them add up, leave the last phase's length out so it "
                        f"takes the rest, or plan the phases' total with --tokens")
    return out


def _mode(i: int, spec: dict[str, Any]) -> str:
    mode = spec.get("mode")
    if i == 0:
        if mode is not None:
            raise UserError(f"the first phase starts the run and takes no mode (got {mode!r}); remove it "
                            f"({PHASES_FIX})")
        return "start"
    if mode is None:
        return "rewarm" if spec.get("lr") is not None or spec.get("warmup_iters") is not None else "continue"
    return str(mode)


def _phase(i: int, s: dict[str, Any], modes: list[str], iters: list[int], starts: np.ndarray, base: RunDefaults,
           prev: Phase | None) -> Phase:
    mode, gbs = modes[i], _batch(s, base)
    start = int(starts[i])
    if mode == "continue":
        segment, changed = _continued(s, prev)
        seg_phase, seg_batch = prev.segment_phase, prev.segment_batch
    else:
        segment, changed = _new_segment(i, s, modes, starts, base, prev), ()
        seg_phase, seg_batch = i + 1, gbs
    counter_sample = start if mode in ("start", "reset") else prev.counter_start_sample
    counter_iter = 0 if mode in ("start", "reset") else prev.counter_start_iter + prev.train_iters
    data = tuple((float(d["weight"]), str(d["prefix"])) for d in s["data"]) if s.get("data") else (
        prev.data if prev else ())
    return Phase(index=i + 1, name=str(s.get("name") or f"phase{i + 1}"), mode=mode, global_batch=gbs,
                 seq_len=base.seq_len, train_iters=iters[i], start_sample=start, counter_start_sample=counter_sample,
                 counter_start_iter=counter_iter, segment=segment, segment_phase=seg_phase, segment_batch=seg_batch,
                 changed=changed, data=data)


def _new_segment(i: int, s: dict[str, Any], modes: list[str], starts: np.ndarray, base: RunDefaults,
                 prev: Phase | None) -> LRSegment:
    """The segment a start, rewarm or reset phase begins (defaults: the segment before, else the plan)."""
    gbs = _batch(s, base)
    own = prev is None and s.get("lr") is None  # the first phase without its own LR: the plan's schedule
    lr = float(s["lr"]) if s.get("lr") is not None else (prev.segment.lr if prev else base.lr)
    min_lr = float(s["min_lr"]) if s.get("min_lr") is not None else (prev.segment.min_lr if prev else base.min_lr)
    warm = s.get("warmup_iters")
    warm = int(warm) if warm is not None else (base.warmup_iters if own else 0)
    style = s.get("decay_style") or (prev.segment.style if prev else base.style)
    chain_end = i
    while chain_end + 1 < len(modes) and modes[chain_end + 1] == "continue":
        chain_end += 1
    default_decay = int(starts[chain_end + 1]) - int(starts[i]) - warm * gbs
    decay = int(s["decay_iters"]) * gbs if s.get("decay_iters") is not None else default_decay
    if decay < 1 and style != "constant":
        raise UserError(f"phase {i + 1}'s warmup ({warm} steps) leaves no decay before its segment ends; "
                        f"shorten warmup_iters or give decay_iters ({PHASES_FIX})")
    _check_lrs(i, lr, min_lr)
    return LRSegment(start_sample=int(starts[i]), lr=lr, min_lr=min_lr, warmup_samples=warm * gbs,
                     decay_samples=max(decay, 1), style=style)


def _continued(s: dict[str, Any], prev: Phase) -> tuple[LRSegment, tuple[str, ...]]:
    """The previous segment, with the fields this continue phase gives replaced (module docstring)."""
    unit = prev.segment_batch
    changes: dict[str, Any] = {}
    if s.get("lr") is not None:
        changes["lr"] = float(s["lr"])
    if s.get("min_lr") is not None:
        changes["min_lr"] = float(s["min_lr"])
    if s.get("warmup_iters") is not None:
        changes["warmup_samples"] = int(s["warmup_iters"]) * unit
    if s.get("decay_iters") is not None:
        changes["decay_samples"] = max(int(s["decay_iters"]) * unit, 1)
    if s.get("decay_style") is not None:
        changes["style"] = s["decay_style"]
    new = replace(prev.segment, **changes)
    _check_lrs(prev.index, new.lr, new.min_lr)
    return new, tuple(f for f in SEGMENT_FIELDS if s.get(f) is not None)


def _check_lrs(i: int, lr: float, min_lr: float) -> None:
    if min_lr > lr:
        raise UserError(f"phase {i + 1}: min_lr {min_lr:g} exceeds lr {lr:g}; lower min_lr ({PHASES_FIX})")


# ------------------------------------------------------------------------------------- the LR curve
def lr_at_tokens(phases: list[Phase], tokens: Any) -> np.ndarray:
    """The LR of the update that starts at token ``tokens`` (array or number) over all ``phases``."""
    if not phases:
        raise UserError("the plan has no phases; add a phases section (scaleplan plan --phases FILE)")
    t = np.atleast_1d(np.asarray(tokens, dtype=float))
    seq = phases[0].seq_len
    samples = t / seq
    starts = np.array([p.start_sample for p in phases], dtype=float)
    which = np.clip(np.searchsorted(starts, samples, side="right") - 1, 0, len(phases) - 1)
    out = np.empty_like(samples)
    for k, p in enumerate(phases):
        sel = which == k
        if sel.any():
            out[sel] = p.segment.lr_at(samples[sel])
    return out if np.ndim(tokens) else out[:1]


def lr_curve(phases: list[Phase], points_per_phase: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """(tokens, LR) sampled over every phase, with each step boundary that matters (phase starts and
    ends, warmup ends) included, for a figure."""
    pts: list[np.ndarray] = []
    for p in phases:
        step = p.global_batch * p.seq_len
        grid = np.linspace(p.start_token, p.end_token - step, points_per_phase)
        seg = p.segment
        warm_end = (seg.start_sample + seg.warmup_samples) * p.seq_len
        marks = [p.start_token, p.end_token - step] + ([warm_end] if p.start_token <= warm_end < p.end_token else [])
        pts.append(np.unique(np.concatenate([grid, marks])))
    tokens = np.concatenate(pts)
    return tokens, lr_at_tokens(phases, tokens)


def phase_rows(phases: list[Phase]) -> list[dict[str, Any]]:
    """One row per phase (name, mode, steps, batch, tokens, LR at its first and last step, sources)."""
    rows = []
    for p in phases:
        last = p.end_token - p.global_batch * p.seq_len
        lr0, lr1 = lr_at_tokens(phases, [p.start_token, last])
        rows.append({"phase": p.name, "mode": p.mode, "steps": p.train_iters, "global_batch": p.global_batch,
                     "start_token": p.start_token, "tokens": p.tokens, "lr_first": float(lr0), "lr_last": float(lr1),
                     "sources": len(p.data)})
    return rows


def describe_phases(phases: list[Phase]) -> list[str]:
    """One summary line per phase: name, mode, steps x batch, tokens, LR segment, sources."""
    out = []
    for p in phases:
        seg = p.segment
        mix = f", {len(p.data)} sources" if p.data else ""
        out.append(f"{p.name} ({p.mode}): {p.train_iters:,} steps x {p.global_batch} = {p.tokens:.4g} tokens; "
                   f"{seg.style} {seg.lr:g} -> {seg.min_lr:g}, warmup {seg.warmup_samples // p.segment_batch} "
                   f"(LR {float(lr_at_tokens(phases, p.start_token)[0]):.4g} at its start){mix}")
    return out
