"""Ladder sizes: the proxy shapes a scaling-law ladder trains, as ``planner.shape.ModelShape``.

Conventions:
* A size is the ModelShape the trainer builds (``proxy_train.config.proxy_shape``: fixed head
  size, SwiGLU width ``planner.shape.swiglu_ffn_dim``, untied embeddings at the data's padded
  vocab), named ``d<d_model>-L<n_layers>``; N are its exact counts (``total_params``,
  ``non_embedding_params``), the same the trainer writes into run.json.
* Targets are *non-embedding* parameter counts. At a fixed depth (μP transfers the tuned values
  across width, not depth, Tensor Programs V §6.1) a target is met by width alone, widths being
  multiples of the head size; with ``depth=None`` ("free") :func:`planner.shape_search.search_shapes`
  proposes width and depth and the trainer's own count re-ranks its candidates.
* Nearest = smallest |log(N / target)|.
"""
from __future__ import annotations

import math
import re

import numpy as np

from planner.errors import UserError
from planner.shape import ModelShape
from proxy_train.config import proxy_shape

DEFAULT_N_RANGE = (1.2e4, 4.0e5)   # non-embedding params: 1.52 decades
SIZE_RE = re.compile(r"^(\d+):(\d+)$")
MAX_WIDTH_IN_HEADS = 256           # widths searched at a fixed depth: head_dim .. 256 x head_dim


def trainer_size(d_model: int, n_layers: int, *, vocab: int, head_dim: int, seq_len: int) -> ModelShape:
    """The shape and counts the proxy trainer builds for (d_model, n_layers) (no torch needed)."""
    if d_model % head_dim:
        raise UserError(f"size {d_model}:{n_layers}: d_model {d_model} is not a multiple of the head size "
                        f"{head_dim} (from hparams base_head_dim); choose widths that are")
    return proxy_shape(vocab, d_model, n_layers, head_dim=head_dim, seq_len=seq_len, name=f"d{d_model}-L{n_layers}")


def size_record(size: ModelShape) -> dict:
    """How study.yaml lists a size."""
    return {"d_model": size.d_model, "n_layers": size.n_layers, "head_dim": size.head_dim,
            "total_params": size.total_params, "non_embedding_params": size.non_embedding_params,
            "d_ffn": size.d_ffn, "name": size.name}


def _log_error(size: ModelShape, target: float) -> float:
    return abs(math.log(size.non_embedding_params / target))


def size_for_params(target: float, *, vocab: int, head_dim: int, seq_len: int,
                    aspect: tuple[float, float] = (8.0, 128.0)) -> ModelShape:
    """The trainer shape nearest ``target`` non-embedding params among search_shapes' candidates."""
    from planner.shape_search import search_shapes

    try:
        # proxies of 1e3..1e6 parameters sit far below every published family: no family rules
        cands = search_shapes(target, non_embedding=True, vocab_size=vocab, pad_vocab_to=None, head_dim=head_dim,
                              seq_len=seq_len, ffn_rule="swiglu8/3", aspect=aspect, top=25, max_rel_error=1.0,
                              family=False, gqa_ratio=1)
    except UserError as e:
        raise UserError(f"no proxy shape with head size {head_dim} near {target:.3g} non-embedding params ({e}); "
                        "choose another size or give d_model:n_layers pairs") from None
    best = None
    for c in cands:
        s = trainer_size(c.shape.d_model, c.shape.n_layers, vocab=vocab, head_dim=head_dim, seq_len=seq_len)
        err = _log_error(s, target)
        if best is None or err < best[0] - 1e-12:
            best = (err, s)
    return best[1]


def size_at_depth(target: float, depth: int, *, vocab: int, head_dim: int, seq_len: int) -> ModelShape:
    """The width (a multiple of the head size) at fixed depth nearest ``target`` non-embedding params."""
    best = None
    for d in range(head_dim, MAX_WIDTH_IN_HEADS * head_dim + 1, head_dim):
        s = trainer_size(d, depth, vocab=vocab, head_dim=head_dim, seq_len=seq_len)
        err = _log_error(s, target)
        if best is None or err < best[0]:
            best = (err, s)
        if s.non_embedding_params > 2 * target:
            break
    return best[1]


def _auto_sizes(n_sizes: int, n_range: tuple[float, float], depth: int | None, **kw) -> list[ModelShape]:
    if n_sizes < 2:
        raise UserError(f"--n-sizes must be at least 2 for a ladder, got {n_sizes}")
    lo, hi = n_range
    if not (0 < lo < hi):
        raise UserError(f"--n-range needs 0 < LO < HI, got {lo:g},{hi:g}")
    targets = np.geomspace(lo, hi, n_sizes)
    if not depth:
        return [size_for_params(t, **kw) for t in targets]
    # each target takes the nearest width not taken yet (widths are coarse when small)
    head_dim = kw["head_dim"]
    cands = [trainer_size(d, depth, **kw) for d in range(head_dim, MAX_WIDTH_IN_HEADS * head_dim + 1, head_dim)]
    cands = [c for c in cands if lo / 2 <= c.non_embedding_params <= hi * 2]
    sizes: list[ModelShape] = []
    for t in targets:
        free = [c for c in cands if c not in sizes]
        if free:
            sizes.append(min(free, key=lambda c: _log_error(c, t)))
    return sizes


def _listed_size(item: str, depth: int | None, **kw) -> ModelShape:
    """One ``--sizes`` entry: ``d_model:n_layers`` or a non-embedding parameter count."""
    m = SIZE_RE.match(item)
    if m:
        d, L = int(m.group(1)), int(m.group(2))
        if d <= 0 or L <= 0:
            raise UserError(f"--sizes entry {item!r}: d_model and n_layers must be positive")
        return trainer_size(d, L, **kw)
    try:
        n = float(item)
    except ValueError:
        raise UserError(f"--sizes entry {item!r} is neither d_model:n_layers (e.g. 64:2) nor a "
                        "non-embedding parameter count (e.g. 1e5); fix the list") from None
    if not (math.isfinite(n) and n >= 1000):
        raise UserError(f"--sizes entry {item!r}: a parameter count must be a number >= 1000")
    return size_at_depth(n, depth, **kw) if depth else size_for_params(n, **kw)


def parse_sizes(text: str | None, *, vocab: int, head_dim: int, seq_len: int, n_sizes: int = 5,
                n_range: tuple[float, float] = DEFAULT_N_RANGE, depth: int | None = None) -> list[ModelShape]:
    """``auto`` (n_sizes log-spaced targets over n_range), ``d:L,d:L,..`` or non-embedding counts.

    With ``depth`` the targets are met by width alone at that depth (μP transfers the tuned values
    across width, not depth); without it search_shapes picks width and depth. Sorted by N, distinct."""
    kw = dict(vocab=vocab, head_dim=head_dim, seq_len=seq_len)
    text = (text or "auto").strip()
    if text == "auto":
        sizes = _auto_sizes(n_sizes, n_range, depth, **kw)
    else:
        sizes = [_listed_size(item, depth, **kw) for item in (t.strip() for t in text.split(",")) if item]
    uniq = sorted({s.name: s for s in sizes}.values(), key=lambda s: s.non_embedding_params)
    if len(uniq) < 2:
        raise UserError(f"the ladder needs at least 2 distinct sizes, got {[s.name for s in uniq]}; "
                        "give more sizes or a wider --n-range")
    return uniq
