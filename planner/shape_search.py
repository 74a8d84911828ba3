"""Model-shape search: a parameter target (or a band of sizes) in, ranked Llama shapes out.

:func:`search_shapes` enumerates Llama-style decoders ``(n_layers, d_model, n_heads, n_kv_heads,
d_ffn)`` with ``d_model = n_heads * head_dim`` near a total (or, with ``non_embedding=True``,
non-embedding) parameter count, counts them exactly (the arithmetic of
:class:`planner.shape.ModelShape`, vectorised with numpy: a search takes milliseconds) and returns
the best first as :class:`ShapeCandidate`. :func:`search_shapes_in_band` returns the best distinct
shapes whose totals lie anywhere in ``[n_lo, n_hi]``, ranked by the rules alone, and
:func:`score_shape` scores any given shape the same way (to rank a published one among them).

Hard rules (a returned shape breaks none; ``HARD_RULES``):

* Megatron-LM validity at the requested TP (``TransformerConfig.__post_init__`` and the TP
  linears, notes §1c rules 4 and 9): ``heads % TP == 0``; ``kv_heads % TP == 0 or
  TP % kv_heads == 0``; ``d_ffn % TP == 0``.
* ``aspect_in_range``: d_model / n_layers inside ``aspect`` (default: the published band,
  ``planner.shape_families.ASPECT_BAND``).
* The family rules of :mod:`planner.shape_families` (sources there): d_model a multiple of 128 (256
  from 1B), head dim 128 (64 below 1B), heads a multiple of 8 or a power of two (4 below
  1B), layers a multiple
  of 4 from 1B and of 8 from 30B, d_ffn a multiple of 256 with d_ffn / d_model in 2.5..4.0, and 8 kv
  heads from d_model 4096 unless ``kv_heads`` / ``gqa_ratio`` say otherwise. ``family=False`` turns
  them off (tiny proxies); an explicit ``head_dim`` or ``aspect`` replaces the family's.

Soft rules (reported per candidate in ``rules``; each broken one adds ``RULE_PENALTY`` points):

* Anthony et al. 2024, "The Case for Co-Designing Model Architectures with Hardware"
  (arXiv 2401.14489, final recommendations): vocabulary divisible by 64 (``vocab_div_64``);
  ``h/a`` a power of two (``head_dim_pow2``); ``h/t`` divisible by a large power of two
  (``hidden_per_tp_pow2``: a power of two, or a multiple of 64); ``(b*a)/t`` an integer
  (``ba_over_t_integer``, micro-batch ``b``); ``t`` small (``tp_within_node``: TP <= 8).
* NVIDIA "Matrix Multiplication Background User's Guide" §2.2: BF16 tensor cores are used best
  when GEMM dims are multiples of 64 elements on A100 (128 bytes): ``d_model_mult_64``,
  ``d_ffn_mult_64``.
* ``depth_at_least_2``: Kaplan et al. 2020 (Fig. 6, left) show one-layer models falling off the
  common loss-vs-N trend that deeper models share.
* ``layers_mult_8``: the family preference for pipeline-friendly depths (planner.shape_families).

The d_ffn rule (``ffn_rule``): ``"multiple256"`` (default) takes the multiple of ``ffn_multiple``
inside ``ffn_ratio`` x d_model that brings the count closest to the target (to the band's geometric
middle in a band search); ``"swiglu8/3"`` fixes d_ffn = ceil(8/3 d / m) * m (Llama-2-7B: 4096 ->
11008). The multiple shrinks for narrow models (``ffn_multiple_for``).

Score (lower is better) = 100 * |rel_error| (target search only: one point per percent)
+ ``ASPECT_WEIGHT`` (2) points per factor of two between d/L and the table's median aspect (110)
+ the penalties of broken soft rules - ``POW2_BONUS`` per power of two in d_model / TP (up to 2^10).
The aspect weight makes half an octave of aspect cost as much as 1 % of parameters: a real family
keeps its aspect and moves the count with depth and width.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from planner.errors import UserError
from planner.shape import ModelShape, pad_vocab
from planner.shape_families import (FAMILY_PENALTY, FAMILY_RULES, FFN_MULTIPLE, FFN_RATIO, HEAD_DIM, SMALL_HEAD_DIM,
                                    Policy, family_rules, family_soft, ffn_multiple_for, heads_regular, is_pow2,
                                    kv_heads_for)

__all__ = ["ShapeCandidate", "search_shapes", "search_shapes_in_band", "score_shape", "ffn_multiple_for",
           "HARD_RULES", "RULE_PENALTY", "FFN_RULES"]

FFN_RULES = ("multiple256", "swiglu8/3")

# Penalty (score points) for each broken soft rule; one point = one percent of parameter error.
RULE_PENALTY: dict[str, float] = {
    "d_model_mult_64": 2.0,
    "d_ffn_mult_64": 1.0,
    "head_dim_pow2": 1.0,
    "hidden_per_tp_pow2": 1.0,
    "vocab_div_64": 1.0,
    "ba_over_t_integer": 1.0,
    "tp_within_node": 0.5,
    "depth_at_least_2": 1.5,
    **FAMILY_PENALTY,
}
MEGATRON_RULES = ("megatron_heads_div_tp", "megatron_kv_heads_tp", "megatron_ffn_div_tp")
# Hard rules: always true for a candidate of a family search (the family ones off with family=False).
HARD_RULES = (*MEGATRON_RULES, "aspect_in_range", *FAMILY_RULES)

ASPECT_WEIGHT = 2.0  # points per factor of two away from the preferred aspect ratio
POW2_BONUS = 0.05  # points per power of two dividing d_model / TP (capped at 2^10)


@dataclass
class ShapeCandidate:
    """One proposed shape: ``params`` is the matched count (total or non-embedding)."""

    shape: ModelShape
    params: int
    target: float  # the target; in a band search the band's geometric middle
    rel_error: float  # params / target - 1
    rules: dict[str, bool]
    score: float
    why: str
    aspect: float = field(default=0.0)

    def to_dict(self) -> dict[str, Any]:
        d = self.shape.to_dict()
        d.update(self.shape.counts())
        d.update(
            params=self.params, target=self.target, rel_error=self.rel_error, aspect=self.aspect,
            score=self.score, why=self.why, rules=dict(self.rules),
        )
        return d


def _pow2_valuation(x: np.ndarray) -> np.ndarray:
    """Exponent of the largest power of two dividing each positive integer in ``x``."""
    x = np.maximum(1, np.asarray(x, dtype=np.int64))
    return np.log2(x & -x).astype(np.int64)


def _positive_int(name: str, v: Any, optional: bool = False) -> None:
    if optional and v is None:
        return
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
        raise UserError(f"{name} must be a positive integer{' or None' if optional else ''}, got {v!r}")


def _policy(*, tp, head_dim, kv_heads, gqa_ratio, aspect, ffn_ratio, ffn_multiple, family) -> Policy:
    """The checked request as a :class:`Policy` (UserError on a bad value)."""
    for name, v in (("tp", tp), ("ffn_multiple", ffn_multiple)):
        _positive_int(name, v)
    _positive_int("kv_heads", kv_heads, optional=True)
    _positive_int("gqa_ratio", gqa_ratio, optional=True)
    if kv_heads is not None and gqa_ratio is not None:
        raise UserError("give kv_heads or gqa_ratio, not both (kv_heads = heads / gqa_ratio)")
    dims = None
    if head_dim is not None:
        dims = [head_dim] if isinstance(head_dim, (int, np.integer)) else list(head_dim)
        if not dims or any(not isinstance(h, (int, np.integer)) or isinstance(h, bool) or h <= 0 for h in dims):
            raise UserError(f"head_dim must be a positive integer (or a list of them), got {head_dim!r}")
        dims = tuple(int(h) for h in dims)
    band = Policy().aspect if aspect is None else (float(aspect[0]), float(aspect[1]))
    if not (0 < band[0] <= band[1]):
        raise UserError(f"aspect range must be 0 < min <= max (d_model / n_layers), got {aspect!r}")
    if not (0 < ffn_ratio[0] <= ffn_ratio[1]):
        raise UserError(f"ffn_ratio must be 0 < min <= max (d_ffn / d_model), got {ffn_ratio!r}")
    return Policy(tp=int(tp), head_dims=dims, kv_heads=kv_heads, gqa_ratio=gqa_ratio, aspect=band,
                  ffn_ratio=(float(ffn_ratio[0]), float(ffn_ratio[1])), ffn_multiple=int(ffn_multiple),
                  family=bool(family))


def _check_count(name: str, v: Any) -> float:
    if not (isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and math.isfinite(v) and v > 0):
        raise UserError(f"{name} must be a positive number, got {v!r}")
    if v > 1e14:
        raise UserError(f"{name} {v:.3g} params is beyond this search's range (<= 1e14); check the units")
    return float(v)


def _check_common(vocab_size, pad_vocab_to, ffn_rule, top, micro_batch, seq_len) -> None:
    for name, v in (("vocab_size", vocab_size), ("top", top), ("micro_batch", micro_batch), ("seq_len", seq_len)):
        _positive_int(name, v)
    if pad_vocab_to is not None and (not isinstance(pad_vocab_to, (int, np.integer)) or pad_vocab_to <= 0):
        raise UserError(f"pad_vocab_to must be a positive integer or None, got {pad_vocab_to!r}")
    if ffn_rule not in FFN_RULES:
        raise UserError(f"unknown ffn_rule {ffn_rule!r}; use one of {', '.join(FFN_RULES)}")


def _head_grid(hd: int, d_max: float, pol: Policy) -> tuple[np.ndarray, ...] | None:
    """(heads, d_model, kv heads) at head dim ``hd`` that the policy allows, up to width ``d_max``."""
    heads = np.arange(pol.tp, max(pol.tp, int(d_max // hd)) + pol.tp, pol.tp, dtype=np.int64)
    d = heads * hd
    kv, ok = kv_heads_for(heads, d, pol)
    ok &= (kv % pol.tp == 0) | (pol.tp % kv == 0)
    if pol.family:
        ok &= heads_regular(heads, np.zeros(heads.shape)) & (d % 128 == 0)  # 4Z: the count decides later
        if pol.head_dims is None:  # 128 from 8 heads of 128 up; 64 below, or where 128 gives irregular heads
            wide = (d % HEAD_DIM == 0) & heads_regular(d // HEAD_DIM) & (d >= 8 * HEAD_DIM)
            ok &= wide if hd == HEAD_DIM else ~wide
    if not ok.any():
        return None
    return heads[ok], d[ok], kv[ok]


def _grid(hd: int, *, lo: float, hi: float, aim: float, non_embedding: bool, v_pad: int, emb_factor: int,
          pol: Policy, ffn_rule: str) -> dict[str, np.ndarray] | None:
    """Every (heads, layers) pair at head dim ``hd`` whose count can land in [lo, hi], with d_ffn
    chosen to bring the count closest to ``aim``, and the exact counts."""
    a_lo, a_hi = pol.aspect
    # Per layer a shape holds at least ~ (2 + 3 * min ffn ratio) d^2 parameters, and has >= d / a_hi layers.
    c = 2.0 + 3.0 * (pol.ffn_ratio[0] if ffn_rule == "multiple256" else 8.0 / 3.0)
    found = _head_grid(hd, min(math.sqrt(hi / c), (hi * a_hi / c) ** (1.0 / 3.0)) + hd, pol)
    if found is None:
        return None
    heads, d, kv = found
    l_lo = np.maximum(1, np.ceil(d / a_hi)).astype(np.int64)
    l_hi = np.floor(d / a_lo).astype(np.int64)
    attn = 2 * d * d + 2 * d * (kv * hd)  # q, o: d x d ; k, v: d x kv_dim
    mult = ffn_multiple_for(d, pol.ffn_multiple, pol.tp)
    if ffn_rule == "swiglu8/3":
        f_min = f_max = (np.ceil(8.0 * d / 3.0 / mult) * mult).astype(np.int64)
    else:
        f_min = np.maximum(mult, np.ceil(pol.ffn_ratio[0] * d / mult) * mult).astype(np.int64)
        f_max = np.maximum(f_min, np.floor(pol.ffn_ratio[1] * d / mult) * mult).astype(np.int64)
    emb = v_pad * d * emb_factor
    off = 0 if non_embedding else emb  # the body's count is the matched count minus this
    # non_emb = L * per_layer + d must land in [lo - off, hi - off].
    l_lo = np.maximum(l_lo, np.ceil((lo - off - d) / (attn + 3 * d * f_max + 2 * d)).astype(np.int64))
    l_hi = np.minimum(l_hi, np.floor((hi - off - d) / (attn + 3 * d * f_min + 2 * d)).astype(np.int64))
    n = np.maximum(0, l_hi - l_lo + 1)
    if n.sum() == 0:
        return None
    idx = np.repeat(np.arange(d.size), n)
    L = l_lo[idx] + np.arange(idx.size) - np.repeat(np.cumsum(n) - n, n)
    off = np.broadcast_to(off, d.shape)
    heads, d, kv, mult, attn, emb, off = (x[idx] for x in (heads, d, kv, mult, attn, emb, off))
    # Free d_ffn: solve L * (attn + 3 d f + 2 d) + d = aim - off for f, round to the multiple, clip.
    f_exact = ((aim - off - d) / L - attn - 2 * d) / (3.0 * d)
    f = np.clip((np.round(f_exact / mult) * mult).astype(np.int64), f_min[idx], f_max[idx])
    non_emb = L * (attn + 3 * d * f + 2 * d) + d
    return dict(heads=heads, d=d, kv=kv, L=L, f=f, non_emb=non_emb, emb=emb,
                head_dim=np.full(L.shape, hd, dtype=np.int64))


def _rules(g: dict[str, np.ndarray], pol: Policy, *, v_pad: int, micro_batch: int) -> dict[str, np.ndarray]:
    """Each hard and soft rule (module docstring), per shape."""
    heads, d, kv, L, f, hd, tp = g["heads"], g["d"], g["kv"], g["L"], g["f"], g["head_dim"], pol.tp
    out = {
        "megatron_heads_div_tp": heads % tp == 0,
        "megatron_kv_heads_tp": (kv % tp == 0) | (tp % kv == 0),
        "megatron_ffn_div_tp": f % tp == 0,
        "aspect_in_range": (d >= pol.aspect[0] * L - 1e-9) & (d <= pol.aspect[1] * L + 1e-9),
        "vocab_div_64": np.full(L.shape, v_pad % 64 == 0),
        "head_dim_pow2": is_pow2(hd),
        "hidden_per_tp_pow2": is_pow2(d // tp) | ((d // tp) % 64 == 0),
        "ba_over_t_integer": (micro_batch * heads) % tp == 0,
        "tp_within_node": np.full(L.shape, tp <= 8),
        "d_model_mult_64": d % 64 == 0,
        "d_ffn_mult_64": f % 64 == 0,
        "depth_at_least_2": L >= 2,
    }
    out.update(family_soft(L, g["non_emb"]))
    out.update(family_rules(L, d, heads, kv, hd, f, g["non_emb"], pol))
    return out


def _score(g: dict[str, np.ndarray], rules: dict[str, np.ndarray], pol: Policy, err: np.ndarray) -> dict[str, Any]:
    """The score's terms per shape (module docstring) and their sum ``score``, lower is better."""
    aspect_ratio = g["d"] / g["L"]
    pts = {"aspect_ratio": aspect_ratio, "aspect_pref": pol.aspect_center, "err": err,
           "aspect": ASPECT_WEIGHT * np.abs(np.log2(aspect_ratio / pol.aspect_center)),
           "rule": sum(pen * ~rules[name] for name, pen in RULE_PENALTY.items()),
           "pow2": -POW2_BONUS * np.minimum(_pow2_valuation(g["d"] // pol.tp), 10)}
    pts["score"] = pts["err"] + pts["aspect"] + pts["rule"] + pts["pow2"]
    return pts


def _search(lo: float, hi: float, aim: float, *, non_embedding: bool, vocab_size: int, pad_vocab_to: int | None,
            tied: bool, pol: Policy, ffn_rule: str, micro_batch: int) -> tuple[dict[str, np.ndarray], dict, int]:
    """(every shape obeying the hard rules with its count in [lo, hi], its rules, the padded vocab)."""
    v_pad = pad_vocab(vocab_size, pad_vocab_to, pol.tp)
    dims = pol.head_dims or ((HEAD_DIM, SMALL_HEAD_DIM) if pol.family else (HEAD_DIM,))
    parts = [p for p in (_grid(hd, lo=lo, hi=hi, aim=aim, non_embedding=non_embedding, v_pad=v_pad,
                               emb_factor=1 if tied else 2, pol=pol, ffn_rule=ffn_rule) for hd in dims) if p]
    if not parts:
        return {}, {}, v_pad
    g = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    g["params"] = g["non_emb"] if non_embedding else g["non_emb"] + g["emb"]
    rules = _rules(g, pol, v_pad=v_pad, micro_batch=micro_batch)
    keep = (g["params"] >= lo) & (g["params"] <= hi)
    for name in (HARD_RULES if pol.family else (*MEGATRON_RULES, "aspect_in_range")):
        keep &= rules[name]
    return {k: v[keep] for k, v in g.items()}, {k: v[keep] for k, v in rules.items()}, v_pad


def _ranked(g, rules, pts, order_keys, top, *, target, shape_kw, band=None) -> list[ShapeCandidate]:
    order = np.lexsort(order_keys)[: int(top)]
    return [_candidate(g, rules, pts, i, rank, target=target, shape_kw=shape_kw, band=band)
            for rank, i in enumerate(order, start=1)]


def search_shapes(
    target_params: float,
    *,
    non_embedding: bool = False,
    vocab_size: int = 32000,
    pad_vocab_to: int | None = 128,
    tp: int = 1,
    head_dim: int | Sequence[int] | None = None,
    seq_len: int = 2048,
    tied: bool = False,
    gqa_ratio: int | None = None,
    kv_heads: int | None = None,
    ffn_rule: str = "multiple256",
    aspect: tuple[float, float] | None = None,
    top: int = 10,
    ffn_multiple: int = FFN_MULTIPLE,
    ffn_ratio: tuple[float, float] = FFN_RATIO,
    micro_batch: int = 1,
    max_rel_error: float = 0.25,
    family: bool = True,
) -> list[ShapeCandidate]:
    """Ranked Llama shapes whose total (or non-embedding) parameter count is near ``target_params``.

    ``head_dim`` None follows the family rule (128; 64 below 1B where 128 gives irregular heads); a
    list (e.g. ``[64, 128]``) searches those. kv heads: ``kv_heads`` K gives min(K, heads),
    ``gqa_ratio`` R gives heads / R (1 = MHA); neither gives the family rule (8 from d_model 4096,
    MHA below). Returns at most ``top`` candidates, best (lowest score) first; raises
    :class:`UserError` when no shape obeys the hard rules within ``max_rel_error``.
    """
    target = _check_count("target params", target_params)
    _check_common(vocab_size, pad_vocab_to, ffn_rule, top, micro_batch, seq_len)
    if not (isinstance(max_rel_error, (int, float)) and 0 < max_rel_error):
        raise UserError(f"max_rel_error must be positive, got {max_rel_error!r}")
    pol = _policy(tp=tp, head_dim=head_dim, kv_heads=kv_heads, gqa_ratio=gqa_ratio, aspect=aspect,
                  ffn_ratio=ffn_ratio, ffn_multiple=ffn_multiple, family=family)
    tol = float(max_rel_error)
    g, rules, v_pad = _search(target * (1 - tol), target * (1 + tol), target, non_embedding=non_embedding,
                              vocab_size=vocab_size, pad_vocab_to=pad_vocab_to, tied=tied, pol=pol,
                              ffn_rule=ffn_rule, micro_batch=micro_batch)
    if not g or g["L"].size == 0:
        raise UserError(_nothing_fits_message(target, non_embedding, v_pad, 1 if tied else 2, pol, tol))
    g["rel"] = g["params"] / target - 1.0
    pts = _score(g, rules, pol, 100.0 * np.abs(g["rel"]))
    shape_kw = dict(vocab_size=int(vocab_size), seq_len=int(seq_len), tied=bool(tied), pad_vocab_to=pad_vocab_to,
                    tp=int(tp))
    # score, then wider, then shallower
    return _ranked(g, rules, pts, (g["L"], -g["d"], pts["score"]), top, target=target, shape_kw=shape_kw)


def search_shapes_in_band(
    n_lo: float,
    n_hi: float,
    *,
    vocab_size: int = 32000,
    pad_vocab_to: int | None = 128,
    tp: int = 1,
    seq_len: int = 2048,
    top: int = 8,
    tied: bool = False,
    head_dim: int | Sequence[int] | None = None,
    gqa_ratio: int | None = None,
    kv_heads: int | None = None,
    aspect: tuple[float, float] | None = None,
    ffn_ratio: tuple[float, float] = FFN_RATIO,
    micro_batch: int = 1,
    family: bool = True,
) -> list[ShapeCandidate]:
    """Up to ``top`` distinct shapes obeying every hard rule whose *total* parameters lie in
    [n_lo, n_hi], best first by the rules' score alone (no distance term: any size in a
    near-optimal band will do); ties go to the count nearest the band's geometric middle. Each
    (layers, d_model, heads, kv heads) appears once, with the d_ffn that brings it nearest that
    middle. Other options as :func:`search_shapes`; UserError when the band holds no such shape.
    """
    lo, hi = _check_count("n_lo", n_lo), _check_count("n_hi", n_hi)
    if lo > hi:
        raise UserError(f"band must have n_lo <= n_hi, got [{lo:.4g}, {hi:.4g}]")
    _check_common(vocab_size, pad_vocab_to, "multiple256", top, micro_batch, seq_len)
    pol = _policy(tp=tp, head_dim=head_dim, kv_heads=kv_heads, gqa_ratio=gqa_ratio, aspect=aspect,
                  ffn_ratio=ffn_ratio, ffn_multiple=FFN_MULTIPLE, family=family)
    mid = math.sqrt(lo * hi)
    g, rules, v_pad = _search(lo, hi, mid, non_embedding=False, vocab_size=vocab_size, pad_vocab_to=pad_vocab_to,
                              tied=tied, pol=pol, ffn_rule="multiple256", micro_batch=micro_batch)
    if not g or g["L"].size == 0:
        raise UserError(f"no shape obeying the family and Megatron rules has {lo:,.0f}..{hi:,.0f} total params "
                        f"(vocab {vocab_size}, TP {tp}); widen the band")
    g["rel"] = g["params"] / mid - 1.0
    pts = _score(g, rules, pol, np.zeros(g["L"].shape))
    shape_kw = dict(vocab_size=int(vocab_size), seq_len=int(seq_len), tied=bool(tied), pad_vocab_to=pad_vocab_to,
                    tp=int(tp))
    keys = (g["L"], -g["d"], np.abs(np.log(g["params"] / mid)), pts["score"])
    return _ranked(g, rules, pts, keys, top, target=mid, shape_kw=shape_kw, band=(lo, hi))


def score_shape(shape: ModelShape, tp: int | None = None, *, target: float | None = None,
                non_embedding: bool = False, head_dim: int | Sequence[int] | None = None,
                gqa_ratio: int | None = None, kv_heads: int | None = None,
                aspect: tuple[float, float] | None = None, ffn_ratio: tuple[float, float] = FFN_RATIO,
                micro_batch: int = 1) -> ShapeCandidate:
    """Any shape scored and rule-checked as the search would (TP defaults to the shape's own).

    With ``target`` the score includes the distance term of :func:`search_shapes` (comparable with
    its candidates); without, it is the rules' score of :func:`search_shapes_in_band`.
    """
    tp = shape.tp if tp is None else tp
    pol = _policy(tp=tp, head_dim=head_dim, kv_heads=kv_heads, gqa_ratio=gqa_ratio, aspect=aspect,
                  ffn_ratio=ffn_ratio, ffn_multiple=FFN_MULTIPLE, family=True)
    s = shape
    g = {k: np.array([v], dtype=np.int64) for k, v in dict(
        heads=s.n_heads, d=s.d_model, kv=s.n_kv_heads, L=s.n_layers, f=s.d_ffn, head_dim=s.head_dim,
        non_emb=s.non_embedding_params, emb=s.embedding_params).items()}
    g["params"] = g["non_emb"] if non_embedding else g["non_emb"] + g["emb"]
    aim = float(g["params"][0]) if target is None else _check_count("target", target)
    g["rel"] = g["params"] / aim - 1.0
    rules = _rules(g, pol, v_pad=s.padded_vocab, micro_batch=micro_batch)
    pts = _score(g, rules, pol, 100.0 * np.abs(g["rel"]))
    return _candidate(g, rules, pts, 0, 0, target=aim, shape_kw={"tp": tp}, shape=s)


def _candidate(g: dict[str, np.ndarray], rules: dict[str, np.ndarray], pts: dict[str, Any], i: int, rank: int, *,
               target: float, shape_kw: dict[str, Any], band: tuple[float, float] | None = None,
               shape: ModelShape | None = None) -> ShapeCandidate:
    """Shape ``i`` of the grid as a ShapeCandidate, with its rules and the reasons for its rank."""
    d, tp = g["d"], shape_kw["tp"]
    shape = shape or ModelShape(
        n_layers=int(g["L"][i]), d_model=int(d[i]), d_ffn=int(g["f"][i]), n_heads=int(g["heads"][i]),
        n_kv_heads=int(g["kv"][i]), head_dim=int(g["head_dim"][i]), **shape_kw)
    cand_rules = {name: bool(v[i]) for name, v in rules.items()}
    broken = [name for name in RULE_PENALTY if not cand_rules[name]]
    broken_hard = [name for name in HARD_RULES if not cand_rules[name]]
    where = (f"{g['params'][i] / 1e9:.3f}B params in the band [{band[0] / 1e9:.3f}B, {band[1] / 1e9:.3f}B]"
             if band else f"{100 * g['rel'][i]:+.2f}% vs target ({pts['err'][i]:.2f} pts)")
    why = (
        (f"#{rank}: " if rank else "") + where
        + f", aspect d/L={pts['aspect_ratio'][i]:.0f} vs preferred {pts['aspect_pref']:.0f} "
        + f"({pts['aspect'][i]:.2f} pts), "
        + (f"breaks hard rules {', '.join(broken_hard)}, " if broken_hard else "follows every family rule, ")
        + (f"breaks {', '.join(broken)} ({pts['rule'][i]:.1f} pts)" if broken else "meets every soft rule")
        + f", d/TP divisible by 2^{min(int(_pow2_valuation(d[i:i + 1] // tp)[0]), 10)}"
    )
    return ShapeCandidate(shape=shape, params=int(g["params"][i]), target=target, rel_error=float(g["rel"][i]),
                          rules=cand_rules, score=float(pts["score"][i]), why=why, aspect=float(pts["aspect_ratio"][i]))


def _nothing_fits_message(target: float, non_embedding: bool, v_pad: int, emb_factor: int, pol: Policy,
                          tol: float) -> str:
    d_min = min(pol.head_dims or (SMALL_HEAD_DIM,)) * math.lcm(pol.tp, pol.gqa_ratio or 1)  # heads: multiples of both
    emb_min = v_pad * d_min * emb_factor
    if not non_embedding and target <= emb_min * (1 + tol):
        return (
            f"target {target:,.0f} total params is not above the embedding alone "
            f"({v_pad:,} padded vocab x d_model {d_min} x {emb_factor} = {emb_min:,}); "
            "match non-embedding params instead (--non-embedding) or use a smaller vocab / tied embeddings"
        )
    family = (" and the family rules (planner/shape_families.py: d_model in 128Z, heads in 8Z or a power of two "
              "(4Z below 1B), even layers (4Z from 1B); family=False turns them off)" if pol.family else "")
    dims = list(pol.head_dims) if pol.head_dims else "auto (128; 64 below 1B)"
    return (
        f"no Llama shape within {100 * tol:.0f}% of {target:,.0f} "
        f"{'non-embedding' if non_embedding else 'total'} params fits head_dim {dims}, "
        f"TP {pol.tp}, kv heads {pol.kv_heads or ('heads / %d' % pol.gqa_ratio if pol.gqa_ratio else 'auto')}, "
        f"aspect d_model/n_layers in [{pol.aspect[0]:g}, {pol.aspect[1]:g}]{family}; "
        "try a smaller head_dim, a wider aspect range or a different target"
    )
