"""Plausibility limits of proxy-training options (issue 18: guard rails on numbers) and memory checks.

The limits themselves, with their sources, live in :mod:`planner.limits` (one source of truth for
hparams.yaml, plan requests and the trainer); they are re-exported here for the trainer's modules. The
CLI (scaleplan/commands/guards.py) refuses beyond them when the command line is read and
``TrainConfig.validate`` for configs from files (hparams.yaml, study.yaml, run.json).
"""
from __future__ import annotations

from planner.limits import (MAX_BATCH, MAX_COORD_WIDTH, MAX_LAYERS, MAX_LR, MAX_MB, MAX_MULT,
                            MAX_SECONDS, MAX_SEED, MAX_SEQ_LEN, MAX_STD, MAX_STEPS, MAX_TOKENS, MAX_TRIALS,
                            MAX_VOCAB, MAX_WD, MAX_WIDTH)

__all__ = ["MAX_BATCH", "MAX_COORD_WIDTH", "MAX_LAYERS", "MAX_LR", "MAX_MB", "MAX_MULT", "MAX_SECONDS", "MAX_SEED",
           "MAX_SEQ_LEN", "MAX_STD", "MAX_STEPS", "MAX_TOKENS", "MAX_TRIALS", "MAX_VOCAB", "MAX_WD", "MAX_WIDTH",
           "available_memory_bytes", "training_bytes", "check_fits_memory"]


def available_memory_bytes() -> int | None:
    """Memory this process can still get: MemAvailable (Linux /proc/meminfo), capped by RLIMIT_AS;
    None where neither is known."""
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY:
            avail = soft if avail is None else min(avail, soft)
    except (ImportError, ValueError, OSError):
        pass
    return avail


def training_bytes(n_params: int, *, batch: int, seq_len: int, d_model: int, n_layers: int, vocab: int) -> int:
    """A lower bound on the memory of fp32 AdamW training: 16 bytes per parameter (weights, grads,
    two Adam moments) plus the activations kept for backward, counted as 16 d_model + vocab values
    per token per layer (inputs of the attention and SwiGLU matmuls) in 4 bytes each."""
    acts = batch * seq_len * (n_layers * 16 * d_model + 2 * vocab) * 4
    return 16 * int(n_params) + int(acts)


def check_fits_memory(what: str, need: int, fix: str) -> None:
    """UserError when ``need`` bytes are more than this machine has available."""
    from planner.errors import UserError

    avail = available_memory_bytes()
    if avail is not None and need > avail:
        raise UserError(f"{what} needs at least {need / 2**30:,.1f} GiB of memory and {avail / 2**30:,.1f} GiB "
                        f"are available; {fix}")
