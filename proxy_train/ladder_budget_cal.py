"""Throughput calibration of the ladder's budget mode: seconds per optimizer step and per evaluation
event of the real proxy model on this machine, and its cache in the study folder.

Conventions:
* Widths head_dim x 2^k at the ladder's depth, from the narrowest up; the next (2x) width is
  measured only while a minimal top-size task at the current one (4 x its shortest run's steps, the
  shortest being ``min_steps`` steps at the smallest size) fits the budget and the 4-epoch data cap,
  and stays within ``ladder_sizes.MAX_WIDTH_IN_HEADS`` heads; at least three widths (the time model
  is affine), so the widest measured width bounds every size the chooser may pick.
* One torch thread (a ladder worker's setting, ``ladder_tasks.worker_init``); the model, optimizer,
  batch, sequence length and evaluation are those of a ladder run (``ladder_plan.train_config``,
  ``trainer.Trainer``). Per width: ``warmup`` untimed steps, then timed steps until ``min_seconds``
  (>= 3, <= 50 steps): the median; an evaluation event = ``Trainer.evaluate`` (eval_batches batches)
  + one checkpoint write, median of up to 3. The machine is shared: the medians include whatever
  contention there is while calibrating, as the ladder's own runs will.
* Cache: ``STUDY/ladder_budget.json`` holds the calibration with the inputs it depends on (data and
  hparams hashes, batch, seq_len, depth, eval batches, budget, workers), written once a ladder was
  chosen from it; a rerun with the same inputs reuses it, so the same ladder is chosen and the rerun
  resumes it. Other inputs recalibrate.
  The checkpoint-write probe goes to a temporary directory, removed at once; nothing else is written.
"""
from __future__ import annotations

import hashlib
import math
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from planner import __version__
from planner.io import read_json, write_json
from proxy_train.host import usable_cores
from proxy_train.ladder_budget import MIN_STEPS, CalPoint, Calibration, step_flops
from proxy_train.ladder_plan import LadderSpec, train_config
from proxy_train.ladder_sizes import MAX_WIDTH_IN_HEADS, trainer_size

CACHE_NAME = "ladder_budget.json"


def calibration_key(spec: LadderSpec, *, budget_minutes: float, workers: int, depth: int) -> dict:
    """The inputs a calibration (and so the choice) depends on."""
    hp = Path(spec.hparams)
    return {"data_sha256": spec.data_meta.get("sha256"), "batch": spec.batch, "seq_len": spec.seq_len,
            "hparams_sha256": hashlib.sha256(hp.read_bytes()).hexdigest() if hp.is_file() else None,
            "depth": depth, "head_dim": spec.sizes[0].head_dim, "eval_batches": spec.eval_batches,
            "budget_minutes": float(budget_minutes), "workers": int(workers), "schedule": spec.schedule,
            "cooldown_frac": spec.cooldown_frac, "holdout_extra": bool(spec.holdout_extra)}


def load_cached(study: Path, key: dict) -> Calibration | None:
    """The cached calibration when its inputs equal ``key``, else None."""
    path = Path(study) / CACHE_NAME
    if not path.is_file():
        return None
    d = read_json(path)
    if not isinstance(d, dict) or d.get("key") != key:
        return None
    return Calibration.from_dict(d.get("calibration", {}))


def save_cached(study: Path, key: dict, cal: Calibration) -> Path:
    path = Path(study) / CACHE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, {"key": key, "calibration": cal.to_dict(), "scaleplan": __version__,
                      "note": "throughput of this machine for `scaleplan ladder --budget-minutes`; delete to "
                              "recalibrate (see proxy_train/ladder_budget_cal.py)"})
    return path


def _median_time(fn, n_min: int, n_max: int, min_seconds: float) -> float:
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < n_max and (len(times) < n_min or time.perf_counter() - start < min_seconds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure_width(spec: LadderSpec, data, d_model: int, depth: int, probe: Path, *, warmup: int = 2,
                  min_seconds: float = 0.5) -> CalPoint:
    """Median seconds per step and per evaluation event of the ladder's model at ``d_model``."""
    from proxy_train.trainer import Trainer

    size = trainer_size(d_model, depth, vocab=int(spec.data_meta["vocab_size"]), head_dim=spec.sizes[0].head_dim,
                        seq_len=spec.seq_len)
    cfg = train_config(spec, size, tokens=spec.tokens_per_step * 1000)
    tr = Trainer(cfg, data)
    for _ in range(warmup):
        tr.train_step(1.0)
    step_s = _median_time(lambda: tr.train_step(1.0), 3, 50, min_seconds)

    def event() -> None:
        tr.evaluate()
        tr.save_ckpt(probe, "calibration")

    try:
        eval_s = _median_time(event, 1, 3, min_seconds)
    finally:
        probe.unlink(missing_ok=True)
    return CalPoint(d_model, depth, step_flops(size, spec.tokens_per_step), step_s, eval_s)


def _worth_next(spec: LadderSpec, p: CalPoint, n_lo: int, budget_s: float, depth: int) -> bool:
    """Could a width 2x this one still be the top size of a ladder within the budget and the data?"""
    hd = spec.sizes[0].head_dim
    size = trainer_size(p.d_model, depth, vocab=int(spec.data_meta["vocab_size"]), head_dim=hd, seq_len=spec.seq_len)
    shortest = max(spec.min_steps, MIN_STEPS)
    steps = 4 * shortest * size.non_embedding_params / n_lo
    max_tokens = spec.max_epochs * int(spec.data_meta.get("train_tokens", 0) or 0)
    too_long = steps * p.step_s > budget_s
    too_big = bool(max_tokens) and steps * spec.tokens_per_step > max_tokens
    return not (too_long or too_big) and 2 * p.d_model <= MAX_WIDTH_IN_HEADS * hd


def calibrate(spec: LadderSpec, *, budget_s: float, depth: int, progress: bool = True) -> Calibration:
    """Measure widths head_dim x 2^k (module docstring) with one torch thread."""
    import torch
    from tqdm import tqdm

    from proxy_train.data import TokenData

    t0 = time.perf_counter()
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    data = TokenData(spec.data)
    hd = spec.sizes[0].head_dim
    n_lo = trainer_size(hd, depth, vocab=int(spec.data_meta["vocab_size"]), head_dim=hd,
                        seq_len=spec.seq_len).non_embedding_params
    tmp = tempfile.TemporaryDirectory(prefix="scaleplan-calibration-")
    probe = Path(tmp.name) / "probe.pt"
    points: list[CalPoint] = []
    bar = tqdm(desc="calibrating widths", unit="width", file=sys.stderr, disable=not progress)
    try:
        d = hd
        while True:
            p = measure_width(spec, data, d, depth, probe)
            points.append(p)
            bar.update(1)
            bar.set_postfix_str(f"width {d}: {p.step_s * 1e3:.1f} ms/step")
            if len(points) >= 3 and not _worth_next(spec, p, n_lo, budget_s, depth):
                break
            if 2 * d > MAX_WIDTH_IN_HEADS * hd:
                break
            d *= 2
    finally:
        bar.close()
        tmp.cleanup()
        torch.set_num_threads(prev_threads)
    host = {"usable_cores": usable_cores(), "machine": platform.machine(), "python": platform.python_version(),
            "torch": str(torch.__version__), "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    return Calibration(points, spec.tokens_per_step, seconds=time.perf_counter() - t0, threads=1, host=host)


def calibration_for(spec: LadderSpec, study: Path, *, budget_minutes: float, workers: int, depth: int,
                    progress: bool = True) -> tuple[Calibration, bool, dict]:
    """(calibration, reused, key): the cached one when its inputs match, else a fresh one. The caller
    caches a fresh one (:func:`save_cached`) once a ladder was chosen from it, so that a refused
    budget leaves nothing behind."""
    if not (math.isfinite(budget_minutes) and budget_minutes > 0):
        from planner.errors import UserError
        raise UserError(f"--budget-minutes must be a positive finite number, got {budget_minutes!r}")
    key = calibration_key(spec, budget_minutes=budget_minutes, workers=workers, depth=depth)
    cached = load_cached(study, key)
    if cached is not None:
        return cached, True, key
    return calibrate(spec, budget_s=60.0 * budget_minutes, depth=depth, progress=progress), False, key
