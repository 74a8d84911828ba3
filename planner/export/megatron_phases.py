"""Megatron-LM launches of a multi-phase plan: one launch per phase that continues the way the phase
says (planner/plan/phases.py: continue, rewarm, reset), never a silent finetune restart.

What Megatron-LM does on a launch (NVIDIA/Megatron-LM d98e8a64, 2026-08-22):

* megatron/training/checkpointing.py ``load_checkpoint``: from ``--load`` without ``--finetune`` it
  restores the iteration, ``args.consumed_train_samples`` (the data position) and, unless
  ``--no-load-optim``, the optimizer state (Adam moments) and the scheduler. ``--finetune``, or
  ``--pretrained-checkpoint`` while ``--load`` holds no checkpoint, sets iteration 0 and loads
  neither optimizer, scheduler nor consumed samples: the step counter, moments and data restart.
* megatron/training/training.py ``get_optimizer_param_scheduler``: the scheduler counts samples:
  warmup ``--lr-warmup-iters`` x GBS, decay end ``--lr-decay-iters`` x GBS (from sample 0 of the
  counter, warmup included), weight-decay horizon ``--train-iters`` x GBS, start ``--lr-warmup-init``;
  ``train_step`` advances it by the global batch after each update.
* megatron/core/optimizer_param_scheduler.py ``load_state_dict``: restores ``num_steps``; every stored
  value (max/min LR, warmup, decay end, style, weight-decay horizon) must equal the argument's
  (``_check_and_set`` asserts) unless ``--override-opt_param-scheduler`` (the arguments win) or
  ``--use-checkpoint-opt_param-scheduler`` (the checkpoint wins). ``--lr-warmup-init`` is not stored.
  A later phase runs to a larger ``--train-iters``, so it always needs one of the two.
* checkpointing.py ``load_checkpoint`` with ``--override-opt-param-scheduler`` (commit 59ff1719,
  2026-08-18): every parameter group's max_lr/min_lr is reset to ``--lr``/``--min-lr`` (decoupled
  groups: ``--decoupled-lr``/``--decoupled-min-lr``): ``--use-mup``'s per-group hidden LRs are lost.
* training.py ``pretrain``: a checkpoint is saved when training ends off the save interval, so the
  next phase finds the previous phase's last step.

What each mode exports (S: the segment's start sample on the counter, W/D warmup/decay samples, G
the global batch):

* continue, schedule unchanged: the same folder, ``--use-checkpoint-opt_param-scheduler`` (the
  checkpoint's schedule is the segment's, in samples: exact for every parameter group, μP included,
  and across a batch change); the schedule flags repeat the previous phase's for the record.
* continue with a changed field, rewarm: ``--override-opt_param-scheduler`` with the segment on the
  counter: ``--lr-warmup-iters (S+W)/G``, ``--lr-decay-iters (S+W+D)/G``, ``--lr-warmup-init
  -lr*S/W``: then init + (lr - init) n/(S+W) = lr (n - S)/W on the warmup and the decay ratio is
  (n - S - W)/D, exactly the segment. W = 0: warmup S/G and init 0 (at n = S the warmup branch
  gives lr). Exact only when every group's max_lr is ``--lr``: the one init starts every group's
  warmup, so a second LR (``--decoupled-lr``, μP) warms up wrong, and ``--use-mup``'s groups are
  reset by the override. Those are refused unless ``allow_approximate_schedule``, which drops the
  re-warmup (exact but for the W warmup steps, at the peak instead of peak*k/W) and says so.
* reset: its own folder and ``--pretrained-checkpoint`` the previous folder (finetune semantics).

launch.sh refuses to start a phase before the previous one's last checkpoint exists, and exits when
its own phase is done; a phase that continues also passes ``--exit-on-missing-checkpoint``
(checkpointing.py ``_load_base_checkpoint``: exit rather than train from random weights). A batch change keeps the counter in samples: boundaries must be multiples of
the new batch and the phase's dataset (``--train-iters`` x GBS samples, training.py
``get_train_valid_test_num_samples``) must hold what was consumed plus the phase, so a batch that
shrinks is refused (``--rampup-batch-size`` ramps linearly from the start, not a step at a phase).
Each phase's mixture is ``--data-path w1 p1 w2 p2 ...``; Megatron enters the new blend at the
consumed samples, so source i is read from about w_i x consumed of its own shuffled index (distinct
documents while the source holds w_i x ``--train-iters`` x GBS samples; else its epochs repeat).
(``--phase-transition-iterations`` would restart each mixture at 0 but needs ``--train-samples`` at
d98e8a64: ``get_train_valid_test_num_samples`` appends ``args.train_samples``, None under --train-iters.)
inverse-square-root divides by the counter itself, so a segment that starts mid-counter is refused.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from planner.errors import UserError
from planner.export.common import q
from planner.export.megatron_flags import Shell
from planner.plan.phases import Phase, resolve_plan_phases

OVERRIDE = "--override-opt_param-scheduler"
USE_CHECKPOINT = "--use-checkpoint-opt_param-scheduler"
_FIX = "or pass --allow-approximate-schedule to drop the re-warmup (launch.sh then states the LR error)"


@dataclass(frozen=True)
class PhaseRun:
    """One Megatron launch of a multi-phase plan (module docstring); iterations on the step counter."""

    name: str  # the phase's name: its TensorBoard folder and launch file suffix
    folder: str  # checkpoint folder under $CHECKPOINT_DIR (shared by the phases of one counter)
    train_iters: int  # --train-iters: where this phase's counter ends
    start_iter: int  # where it starts (the guard: the folder must hold this iteration)
    global_batch: int
    lr: float
    min_lr: float
    warmup_iters: int
    lr_decay_iters: int
    decay_style: str
    warmup_init: float
    scheduler: str | None  # OVERRIDE, USE_CHECKPOINT or None (first phase of a counter)
    previous: str | None  # reset: the folder whose last checkpoint it starts from
    previous_end: int  # reset: the iteration that folder must hold
    data: tuple[tuple[float, str], ...]
    note: str  # what launch.sh says about this phase (approximations included)
    approximate: bool = False  # its LR differs from the plan's (allow_approximate_schedule)
    continued: str | None = None  # continual pretraining (continued_run): kept | fresh optimizer
    checkpoint: str | None = None  # continued: the checkpoint it starts from (None: a placeholder)


def phase_runs(plan, *, mup_mode: str = "native", allow_approximate_schedule: bool = False) -> list[PhaseRun]:
    """The launches of ``plan.phases`` (empty without phases); UserError for what Megatron cannot do."""
    phases = resolve_plan_phases(plan)
    runs: list[PhaseRun] = []
    for p in phases:
        runs.append(_run(plan, p, runs[-1] if runs else None, phases, mup_mode, allow_approximate_schedule))
    return runs


def _run(plan, p: Phase, prev: PhaseRun | None, phases: list[Phase], mup_mode: str, approx: bool) -> PhaseRun:
    new_counter = p.mode in ("start", "reset")
    folder = p.name if new_counter else prev.folder
    _check_batch(p, phases)
    native_mup = plan.is_mup and mup_mode == "native" and not new_counter
    if (p.mode == "continue" and not p.changed) or (native_mup and approx):
        sched = dict(lr=prev.lr, min_lr=prev.min_lr, warmup_iters=prev.warmup_iters,
                     lr_decay_iters=prev.lr_decay_iters, decay_style=prev.decay_style, warmup_init=prev.warmup_init)
        scheduler, note = USE_CHECKPOINT, f"{p.name} continues {prev.name}'s schedule, optimizer state and data position"
        approximate = prev.approximate
        if approximate:
            note += f"; APPROXIMATE: it inherits {prev.name}'s approximated schedule"
        if p.mode != "continue" or p.changed:
            note = f"{p.name} ({p.mode}): APPROXIMATE: {prev.name}'s schedule continued instead; " + _error(p, phases)
            approximate = True
    elif native_mup:
        raise UserError(f"{p.name} ({p.mode}) needs {OVERRIDE}, which resets every non-decoupled group's max LR to "
                        "--lr on load (Megatron-LM checkpointing.py load_checkpoint, commit 59ff1719) and so erases "
                        "--use-mup's per-group hidden LR; the nearest launch continues the previous schedule ("
                        + _error(p, phases) + "): pass --allow-approximate-schedule for it, export with "
                        "--megatron-mup translate, or use mode reset")
    else:
        sched, note = _schedule(plan, p, mup_mode, approx)
        scheduler, approximate = None if new_counter else OVERRIDE, "APPROXIMATE" in note
    return PhaseRun(name=p.name, folder=folder, train_iters=p.counter_start_iter + p.train_iters,
                    start_iter=p.counter_start_iter, global_batch=p.global_batch, **sched, scheduler=scheduler,
                    previous=prev.folder if p.mode == "reset" else None,
                    previous_end=prev.train_iters if p.mode == "reset" else 0, data=p.data, note=note,
                    approximate=approximate)


def _schedule(plan, p: Phase, mup_mode: str, approx: bool) -> tuple[dict, str]:
    """The segment in Megatron's counter units (module docstring), exact or refused."""
    seg, G = p.segment, p.global_batch
    S, W, D = seg.start_sample - p.counter_start_sample, seg.warmup_samples, seg.decay_samples
    note = f"{p.name} ({p.mode}): LR {seg.lr:g} -> {seg.min_lr:g}, exact"
    mid = S > 0
    if mid and seg.style == "inverse-square-root":
        raise UserError(f"{p.name} starts an inverse-square-root segment mid-run; Megatron's formula divides by the "
                        "whole counter (optimizer_param_scheduler.py get_lr); use linear or cosine, or mode reset")
    init, warm = 0.0, W
    if mid and W > 0:
        ratio = _second_lr_ratio(plan)
        if ratio is None:
            init, warm = -seg.lr * S / W, S + W
        elif not approx:
            start = seg.lr * S * (ratio - 1.0) / (S + W)
            raise UserError(f"{p.name} re-warms up at step {S // G:,} with Adam state kept, but Megatron starts every "
                            f"parameter group's warmup from one --lr-warmup-init: the group at {ratio:.4g}x --lr "
                            f"(--decoupled-lr or μP) would start at LR {start:.3g} instead of 0; {_FIX}")
        else:
            warm = S
            note = (f"{p.name} ({p.mode}): APPROXIMATE: the {W // G} warmup steps run at the peak {seg.lr:g} instead "
                    f"of {seg.lr:g}*k/{W // G} (step k); the LR is exact from step {W // G} of the phase on")
    elif mid:
        warm = S
    end = S + W + D
    if seg.style == "constant":
        end = max(end, warm + G)  # Megatron asserts warmup < decay end; constant ignores the decay
    for what, samples in (("warmup end", warm), ("decay end", end)):
        if samples % G:
            raise UserError(f"{p.name}'s {what} falls at sample {samples:,}, not a whole step at its global batch "
                            f"{G}; Megatron counts --lr-warmup-iters/--lr-decay-iters in steps of the current "
                            "batch (training.py get_optimizer_param_scheduler): align the phases with the batch")
    return dict(lr=seg.lr, min_lr=seg.min_lr, warmup_iters=warm // G, lr_decay_iters=end // G,
                decay_style=seg.style, warmup_init=init), note


def _error(p: Phase, phases: list[Phase]) -> str:
    """The LR error of running phase ``p`` on the previous phase's segment, over its steps."""
    steps = np.arange(p.train_iters)
    samples = p.start_sample + steps * p.global_batch
    want, got = p.segment.lr_at(samples), phases[p.index - 2].segment.lr_at(samples)
    err = np.abs(got - want)
    k = int(np.argmax(err))
    after = steps >= p.segment.warmup_samples // p.global_batch
    rel = float(np.max(err[after] / np.maximum(want[after], 1e-300))) if after.any() else 0.0
    return (f"LR off by up to {err[k]:.3g} (step {k}: {got[k]:.4g} instead of {want[k]:.4g}), by at most "
            f"{100 * rel:.3g}% after the phase's warmup")


def _second_lr_ratio(plan) -> float | None:
    """None when every parameter group trains at --lr; else the other group's LR over --lr."""
    t = plan.training
    if plan.is_mup:
        return float(plan.hparams.embedding.lr / t.lr)
    if t.decoupled_lr is not None and t.decoupled_lr != t.lr:
        return float(t.decoupled_lr / t.lr)
    return None


def _check_batch(p: Phase, phases: list[Phase]) -> None:
    """A phase's dataset (counter end x its batch) must hold the samples consumed on its counter plus its own."""
    before = [q for q in phases if q.counter_start_sample == p.counter_start_sample and q.index < p.index]
    need = sum(q.samples for q in before) + p.samples
    have = (p.counter_start_iter + p.train_iters) * p.global_batch
    if have < need:
        raise UserError(f"{p.name} lowers the global batch to {p.global_batch}: Megatron builds its dataset for "
                        f"--train-iters x --global-batch-size = {have:,} samples (training.py "
                        f"get_train_valid_test_num_samples) but the run consumes {need:,} by the phase's end; keep "
                        "or raise the batch, or start the phase with mode reset")


def data_path_values(run: PhaseRun) -> list[str] | None:
    """``--data-path`` values of a phase's mixture: weight then prefix (exact float text), or None."""
    if not run.data:
        return None
    out: list[str] = []
    for w, prefix in run.data:
        out += [str(int(w)) if float(w).is_integer() else repr(float(w)), prefix]
    return out


def guard_lines(run: PhaseRun) -> list[str]:
    """launch.sh lines: refuse to start before the previous phase's last checkpoint; exit when done."""
    folder = f'"${{CHECKPOINT_DIR}}/{run.folder}"'
    L = ["# ---- phase order (PHASE_CHECK=0 skips this, e.g. for a dry run) ---------------------",
         f"# {run.note}",
         'phase_done() { local t="$1/latest_checkpointed_iteration.txt"; local i; i="$(cat "$t" 2>/dev/null || '
         'echo 0)"; [[ "$i" =~ ^[0-9]+$ ]] || i=0; echo "$i"; }',
         'if [[ "${PHASE_CHECK:-1}" != 0 ]]; then',
         f"  DONE=\"$(phase_done {folder})\""]
    L.append(f'  if (( DONE >= {run.train_iters} )); then echo "{run.name} is done (iteration $DONE)" >&2; exit 0; fi')
    if run.previous:
        prev = f'"${{CHECKPOINT_DIR}}/{run.previous}"'
        L.append(f'  if (( DONE == 0 )) && (( $(phase_done {prev}) < {run.previous_end} )); then echo "{run.name} starts '
                 f'from iteration {run.previous_end} in folder {run.previous}; finish the phases there first" >&2; exit 1; fi')
    elif run.start_iter:
        L.append(f'  if (( DONE < {run.start_iter} )); then echo "{run.name} starts at iteration {run.start_iter} of '
                 f'{run.folder}, which holds $DONE; finish the phase before it first" >&2; exit 1; fi')
    return L + ["fi", ""]


def phase_scheduler_args(run: PhaseRun) -> list[tuple[str, Any]]:
    """The flags that make a phase continue as its mode says (module docstring)."""
    a: list[tuple[str, Any]] = []
    if run.warmup_init:
        a.append(("--lr-warmup-init", repr(float(run.warmup_init))))  # exact text: it cancels -lr*S/W
    if run.continued == "fresh":  # continual pretraining, weights only (continued_run)
        return a + [("--pretrained-checkpoint", Shell('"${CONTINUE_FROM}"'))]
    if run.scheduler:  # a phase that continues must find its checkpoint, never start from random weights
        a += [(run.scheduler, True), ("--exit-on-missing-checkpoint", True)]
    if run.previous:
        a.append(("--pretrained-checkpoint", Shell('"${CHECKPOINT_DIR}/' + run.previous + '"')))
    return a


# ---------------------------------------------------------------------- continual pretraining
#: launch.sh's placeholder for a continued plan's checkpoint when the plan names none.
CONTINUE_PLACEHOLDER = "/path/to/checkpoint"


def continued_run(plan, *, mup_mode: str = "native", allow_approximate_schedule: bool = False) -> PhaseRun | None:
    """The launch of a continued plan (``training.continue_from``, planner/plan/continuation.py), None otherwise.

    It is the second phase of an implicit two-phase run whose first phase is the checkpoint's:
    optimizer kept -> a ``rewarm`` phase on the same counter (``--load`` the checkpoint without
    ``--finetune``: iteration, consumed samples, Adam moments and scheduler restored; the plan's
    schedule placed at sample S = iteration x its batch by :func:`_schedule` with
    ``--override-opt_param-scheduler``; ``--train-iters`` = iteration + the new steps); optimizer
    fresh -> a ``reset`` phase (``--pretrained-checkpoint``: finetune semantics, counter, moments and
    data from 0, the plan's schedule as is). Sources: the module docstring (checkpointing.py
    ``load_checkpoint``, optimizer_param_scheduler.py ``load_state_dict`` at d98e8a64); with
    ``--override-opt_param-scheduler`` ``load_checkpoint`` also sets the scheduler's ``num_steps``
    to the checkpoint's ``consumed_train_samples``, the S the schedule is placed at; with
    ``--pretrained-checkpoint`` it loads that folder with ``args.finetune = True`` only while
    ``--load`` holds no checkpoint, so a relaunch resumes this run.
    """
    from planner.plan.continuation import plan_continuation
    from planner.plan.phases import LRSegment

    cont = plan_continuation(plan)
    if cont is None:
        return None
    t = plan.training
    kept = cont.keeps_optimizer
    S = cont.consumed_samples if kept else 0
    G, n = t.global_batch, t.train_iters
    if kept and t.schedule not in ("cosine", "wsd"):
        raise UserError(f"a continued run with its optimizer kept needs a cosine or WSD schedule, got {t.schedule!r}")
    if kept and (cont.iteration + n) * G < S + n * G:  # training.py get_train_valid_test_num_samples
        raise UserError(f"the plan's global batch {G} is smaller than the checkpoint's {cont.global_batch}: Megatron "
                        f"builds its dataset for --train-iters x --global-batch-size = {(cont.iteration + n) * G:,} "
                        f"samples but the run consumes {S + n * G:,}; keep or raise the batch, or pass --fresh-optimizer")
    seg = LRSegment(start_sample=S, lr=t.lr, min_lr=t.min_lr, warmup_samples=t.warmup_iters * G,
                    decay_samples=max((t.lr_decay_iters - t.warmup_iters) * G, 1), style=t.schedule)
    phase = Phase(index=2, name="continued", mode="rewarm" if kept else "reset", global_batch=G, seq_len=t.seq_len,
                  train_iters=n, start_sample=S, counter_start_sample=0 if kept else S,
                  counter_start_iter=cont.iteration if kept else 0, segment=seg, segment_phase=2, segment_batch=G,
                  changed=(), data=())
    if kept and plan.is_mup and mup_mode == "native":
        raise UserError(f"a continued run with its optimizer kept needs {OVERRIDE}, which resets every non-decoupled "
                        "group's max LR to --lr on load (Megatron-LM checkpointing.py load_checkpoint, commit "
                        "59ff1719) and so erases --use-mup's per-group hidden LR; export with --megatron-mup "
                        "translate, or plan with --fresh-optimizer")
    if kept:
        sched, note = _schedule(plan, phase, mup_mode, allow_approximate_schedule)
        note = (f"continued from iteration {cont.iteration:,} ({S:,} samples consumed) with optimizer state, "
                f"scheduler counter and data position kept (--load, no --finetune); " + note.split(": ", 1)[1])
    else:
        sched = dict(lr=t.lr, min_lr=t.min_lr, warmup_iters=t.warmup_iters, lr_decay_iters=t.lr_decay_iters,
                     decay_style=t.schedule, warmup_init=0.0)
        note = ("continued from the checkpoint's weights only (--fresh-optimizer: --pretrained-checkpoint, finetune "
                "semantics: iteration, Adam moments, scheduler and data position start at 0)")
    return PhaseRun(name="continued", folder="", train_iters=phase.counter_start_iter + n,
                    start_iter=phase.counter_start_iter, global_batch=G, **sched,
                    scheduler=OVERRIDE if kept else None, previous=None, previous_end=0, data=(), note=note,
                    approximate="APPROXIMATE" in note, continued=cont.optimizer, checkpoint=cont.checkpoint)


def continuation_lines(run: PhaseRun) -> list[str]:
    """launch.sh lines of a continued plan: the checkpoint, and which folder ``--load`` reads.

    The first launch loads the given checkpoint; a relaunch after a failure finds this run's own
    checkpoint in ``$CHECKPOINT_DIR`` and resumes from it (``latest_checkpointed_iteration.txt``,
    Megatron-LM checkpointing.py ``read_metadata``). Optimizer kept: the checkpoint must hold
    ``start_iter`` (the exported schedule is placed there), else launch.sh refuses to start.
    """
    path = run.checkpoint or CONTINUE_PLACEHOLDER
    todo = "" if run.checkpoint else "  # TODO: the checkpoint folder to continue from"
    latest = "latest_checkpointed_iteration.txt"
    L = ["# ---- continual pretraining (planner/plan/continuation.py) --------------------------",
         f"# {run.note}", f"CONTINUE_FROM={q(path)}{todo}"]
    if run.continued == "fresh":
        return L + [f'if [[ ! -f "$CONTINUE_FROM/{latest}" ]]; then echo "no Megatron checkpoint in $CONTINUE_FROM" >&2; '
                    "exit 1; fi", ""]
    return L + [
        f'if [[ -f "${{CHECKPOINT_DIR}}/{latest}" ]]; then LOAD_DIR="${{CHECKPOINT_DIR}}"  # a relaunch: resume this run',
        "else",
        f'  LOAD_DIR="$CONTINUE_FROM"; FOUND="$(cat "$CONTINUE_FROM/{latest}" 2>/dev/null || echo none)"',
        f'  if [[ "$FOUND" != {run.start_iter} ]]; then echo "$CONTINUE_FROM holds iteration $FOUND, not '
        f'{run.start_iter}: the schedule is placed at {run.start_iter}; re-plan with --continue-from-iteration" >&2; '
        "exit 1; fi",
        "fi", ""]

