"""Step 2, choose the shape: the best divisibility-aware Llama shape near N*, or the pinned one.

The search is planner/shape_search.py (total parameters, vocabulary padded to a multiple of 128
x TP, head dim 128, SwiGLU FFN a multiple of 256); the plan keeps its top five as candidates,
chosen first. A pinned shape (a preset's) takes the request's sequence length, TP (for vocabulary
padding, when the shape pads) and vocabulary.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from planner.errors import UserError
from planner.plan.request import DEFAULT_VOCAB, PlanRequest
from planner.plan.sections import PlanAllocation, ShapeOption
from planner.shape import ModelShape

if TYPE_CHECKING:
    from planner.shape_search import ShapeCandidate

CANDIDATES_KEPT = 5


def choose_shape(request: PlanRequest, allocation: PlanAllocation) -> tuple[ModelShape, list[ShapeOption]]:
    """(the shape, the candidates the search ranked: none for a pinned shape)."""
    tp = request.tp or 1
    if request.shape is not None:
        return pinned_shape(request.shape, seq_len=request.seq_len, tp=tp, vocab=request.vocab), []
    return searched_shape(allocation.N, vocab=int(request.vocab or DEFAULT_VOCAB), seq_len=request.seq_len, tp=tp)


def pinned_shape(shape: ModelShape, *, seq_len: int, tp: int, vocab: int | None) -> ModelShape:
    shape = shape.replace(seq_len=seq_len, **({"tp": tp} if shape.pad_vocab_to else {}))
    return shape.replace(vocab_size=int(vocab)) if vocab else shape


def searched_shape(n_target: float, *, vocab: int, seq_len: int, tp: int) -> tuple[ModelShape, list[ShapeOption]]:
    from planner.shape_search import search_shapes  # numpy: loaded to search a shape, not to read a plan

    try:
        cands = search_shapes(n_target, vocab_size=vocab, pad_vocab_to=128, tp=tp, seq_len=seq_len,
                              top=CANDIDATES_KEPT)
    except UserError as e:
        raise UserError(f"no model shape near N* = {n_target:.3g} parameters (vocab {vocab}, TP {tp}): {e}. "
                        "Raise the budget, or use a smaller --vocab") from None
    return cands[0].shape, [ShapeOption.from_candidate(c) for c in cands]


def band_shapes(request: PlanRequest, band: tuple[float, float]) -> list[ShapeCandidate]:
    """Up to ``BAND_SHAPES`` family-rule shapes with total parameters inside ``band`` (best first)."""
    from planner.plan.joint_choice import BAND_SHAPES
    from planner.shape_search import search_shapes_in_band

    try:
        cands = search_shapes_in_band(band[0], band[1], vocab_size=int(request.vocab or DEFAULT_VOCAB),
                                      pad_vocab_to=128, tp=request.tp or 1, seq_len=request.seq_len, top=BAND_SHAPES)
    except UserError:
        return []  # no family shape in the band: the baseline alone
    return list(cands)
