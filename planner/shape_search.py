"""Divisibility-aware model-shape search: a parameter target in, ranked Llama shapes out.

Given a parameter count (total, or non-embedding with ``non_embedding=True``) and the constraints
of the run (tensor-parallel size, head dim, vocabulary, GQA ratio), :func:`search_shapes`
enumerates Llama-style decoders ``(n_layers, d_model, n_heads, n_kv_heads, d_ffn)`` with
``d_model = n_heads * head_dim``, counts their parameters exactly (the same arithmetic as
:class:`planner.shape.ModelShape`, vectorised with numpy so that a search takes milliseconds),
and returns the best ones first as :class:`ShapeCandidate`.

Hard constraints (a shape that breaks one is never returned):

* Megatron-LM validity at the requested TP (``TransformerConfig.__post_init__`` and the TP
  linears, notes §1c rules 4 and 9): ``heads % TP == 0``; ``kv_heads % TP == 0 or
  TP % kv_heads == 0``; ``d_ffn % TP == 0``; kv heads divide heads.
* Aspect ratio ``d_model / n_layers`` inside ``aspect`` (default 32..256). Kaplan et al. 2020
  (arXiv 2001.08361, §3.1 and Fig. 5) found that at fixed non-embedding N the loss changes by only
  a few percent across a wide range of d_model/n_layer, so the range is a sanity band, and inside
  it we only mildly prefer its (geometric) middle; Llama-2-7B sits at 128, Llama-2-70B at 102,
  llm-jp-3-1.8b at 85, TinyLlama at 93.
* ``|params / target - 1| <= max_rel_error``.

Soft rules (reported per candidate in ``rules``; each broken one adds a penalty to ``score``):

* Anthony et al. 2024, "The Case for Co-Designing Model Architectures with Hardware"
  (arXiv 2401.14489, final recommendations): vocabulary divisible by 64 (``vocab_div_64``);
  ``h/a`` a power of two (``head_dim_pow2``); ``h/t`` divisible by a large power of two
  (``hidden_per_tp_pow2``: a power of two, or a multiple of 64); ``(b*a)/t`` an integer
  (``ba_over_t_integer``, micro-batch ``b``); ``t`` small (``tp_within_node``: TP <= 8).
* NVIDIA "Matrix Multiplication Background User's Guide" §2.2: BF16 tensor cores are used best
  when GEMM dims are multiples of 64 elements on A100 (128 bytes): ``d_model_mult_64``,
  ``d_ffn_mult_64``.
* ``depth_at_least_2``: Kaplan et al. 2020 (Fig. 6, left) show one-layer models falling off the
  common loss-vs-N trend that deeper models share, so a single layer is discouraged.

The d_ffn rule (``ffn_rule``):

* ``"multiple256"``: d_ffn is a free multiple of ``ffn_multiple`` (default 256) with
  ``ffn_ratio[0] <= d_ffn / d_model <= ffn_ratio[1]`` (default 2.5..4.0, the span of published
  Llamas: Llama-2 2.69, TinyLlama 2.75, Llama-3/Mistral/llm-jp-3 3.5, Llama-3.2-1B 4.0), chosen to
  bring the count closest to the target.
* ``"swiglu8/3"``: d_ffn = ceil(8/3 * d_model / multiple) * multiple, as in Llama's
  ``multiple_of=256`` (Llama-2-7B: 4096 -> 11008).

For small widths a multiple of 256 would dwarf 8/3 * d_model, so the multiple used is
``min(ffn_multiple, 2**floor(log2(d_model / 4)))`` with a floor of 8 (d_model 512 -> 128,
128 -> 32, 32 -> 8); it is also raised to a multiple of TP (lcm) so that d_ffn % TP == 0.

Score (lower is better) = 100 * |rel_error| (one point per percent off target)
+ the penalties of broken soft rules (``RULE_PENALTY``) + 0.5 per factor of two the aspect ratio
sits away from the middle of its range - 0.05 per power of two in d_model / TP (up to 2^10,
a small tie-break towards GEMM-friendly widths).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from planner.errors import UserError
from planner.shape import ModelShape, pad_vocab

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
}
# Hard rules: always true for a returned candidate; listed so a reader sees what was checked.
HARD_RULES = ("megatron_heads_div_tp", "megatron_kv_heads_tp", "megatron_ffn_div_tp", "aspect_in_range")

ASPECT_WEIGHT = 0.5  # points per factor of two away from the preferred aspect ratio
POW2_BONUS = 0.05  # points per power of two dividing d_model / TP (capped at 2^10)


@dataclass
class ShapeCandidate:
    """One proposed shape: ``params`` is the matched count (total or non-embedding)."""

    shape: ModelShape
    params: int
    target: float
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
    x = x.astype(np.int64)
    return np.log2(x & -x).astype(np.int64)


def _is_pow2(x: np.ndarray) -> np.ndarray:
    return (x > 0) & ((x & (x - 1)) == 0)


def ffn_multiple_for(d_model: np.ndarray | int, requested: int = 256, tp: int = 1) -> np.ndarray:
    """The d_ffn granularity at width ``d_model`` (see module docstring): shrinks for small widths."""
    d = np.asarray(d_model, dtype=np.int64)
    cap = np.maximum(8, 2 ** np.floor(np.log2(np.maximum(d, 4) / 4)).astype(np.int64))
    m = np.minimum(int(requested), cap)
    return np.lcm(m, int(tp))


def _as_head_dims(head_dim: int | Sequence[int]) -> list[int]:
    dims = [head_dim] if isinstance(head_dim, (int, np.integer)) else list(head_dim)
    if not dims or any(not isinstance(h, (int, np.integer)) or isinstance(h, bool) or h <= 0 for h in dims):
        raise UserError(f"head_dim must be a positive integer (or a list of them), got {head_dim!r}")
    return [int(h) for h in dims]


def _check_inputs(target_params, vocab_size, pad_vocab_to, tp, gqa_ratio, ffn_rule, aspect, top,
                  ffn_ratio, micro_batch, max_rel_error, seq_len) -> None:
    if not (isinstance(target_params, (int, float, np.number)) and math.isfinite(target_params)
            and target_params > 0):
        raise UserError(f"target params must be a positive number, got {target_params!r}")
    if target_params > 1e14:
        raise UserError(f"target {target_params:.3g} params is beyond this search's range (<= 1e14); check the units")
    for name, v in (("vocab_size", vocab_size), ("tp", tp), ("gqa_ratio", gqa_ratio), ("top", top),
                    ("micro_batch", micro_batch), ("seq_len", seq_len)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
            raise UserError(f"{name} must be a positive integer, got {v!r}")
    if pad_vocab_to is not None and (not isinstance(pad_vocab_to, (int, np.integer)) or pad_vocab_to <= 0):
        raise UserError(f"pad_vocab_to must be a positive integer or None, got {pad_vocab_to!r}")
    if ffn_rule not in FFN_RULES:
        raise UserError(f"unknown ffn_rule {ffn_rule!r}; use one of {', '.join(FFN_RULES)}")
    lo, hi = aspect
    if not (0 < lo <= hi):
        raise UserError(f"aspect range must be 0 < min <= max (d_model / n_layers), got {aspect!r}")
    rlo, rhi = ffn_ratio
    if not (0 < rlo <= rhi):
        raise UserError(f"ffn_ratio must be 0 < min <= max (d_ffn / d_model), got {ffn_ratio!r}")
    if not (0 < max_rel_error):
        raise UserError(f"max_rel_error must be positive, got {max_rel_error!r}")


def _grid(target: float, head_dim: int, *, non_embedding: bool, v_pad: int, emb_factor: int, tp: int,
          gqa_ratio: int, ffn_rule: str, ffn_multiple: int, ffn_ratio: tuple[float, float],
          aspect: tuple[float, float], tol: float) -> dict[str, np.ndarray]:
    """All feasible (heads, layers) pairs for one head dim, with d_ffn and exact counts."""
    a_lo, a_hi = aspect
    # Upper bound on d_model: even one layer / the shallowest allowed depth must fit the target.
    # Per layer a shape holds at least ~ (2 + 3 * min ffn ratio) d^2 parameters.
    c = 2.0 + 3.0 * (ffn_ratio[0] if ffn_rule == "multiple256" else 8.0 / 3.0)
    t_max = target * (1.0 + tol)
    d_max = min(math.sqrt(t_max / c), (t_max * a_hi / c) ** (1.0 / 3.0)) + head_dim
    step = tp * gqa_ratio // math.gcd(tp, gqa_ratio)  # heads must be a multiple of TP and of R
    heads = np.arange(step, max(step, int(d_max // head_dim)) + step, step, dtype=np.int64)
    d = heads * head_dim
    kv = heads // gqa_ratio
    kv_ok = (kv % tp == 0) | (tp % kv == 0)
    heads, d, kv = heads[kv_ok], d[kv_ok], kv[kv_ok]
    if heads.size == 0:
        return {}
    # Depth range from the aspect band: a_lo <= d / L <= a_hi.
    l_lo = np.maximum(1, np.ceil(d / a_hi)).astype(np.int64)
    l_hi = np.floor(d / a_lo).astype(np.int64)
    # Narrow it further with the parameter target (per-layer count is bracketed by the ffn band).
    attn = 2 * d * d + 2 * d * (kv * head_dim)  # q, o: d x d ; k, v: d x kv_dim
    mult = ffn_multiple_for(d, ffn_multiple, tp)
    if ffn_rule == "swiglu8/3":
        f_fixed = (np.ceil(8.0 * d / 3.0 / mult) * mult).astype(np.int64)
        f_min = f_max = f_fixed
    else:
        f_min = np.maximum(mult, np.ceil(ffn_ratio[0] * d / mult) * mult).astype(np.int64)
        f_max = np.maximum(f_min, np.floor(ffn_ratio[1] * d / mult) * mult).astype(np.int64)
    per_min = attn + 3 * d * f_min + 2 * d
    per_max = attn + 3 * d * f_max + 2 * d
    emb = v_pad * d * emb_factor
    t_ne = np.full(d.shape, float(target)) if non_embedding else target - emb  # target for the body
    # non_emb = L * per + d  must land in [t_ne - tol*target, t_ne + tol*target]
    lo_need = (t_ne - tol * target - d) / per_max
    hi_need = (t_ne + tol * target - d) / per_min
    l_lo = np.maximum(l_lo, np.ceil(lo_need).astype(np.int64))
    l_hi = np.minimum(l_hi, np.floor(hi_need).astype(np.int64))
    n = np.maximum(0, l_hi - l_lo + 1)
    if n.sum() == 0:
        return {}
    idx = np.repeat(np.arange(d.size), n)
    offs = np.arange(idx.size) - np.repeat(np.cumsum(n) - n, n)
    L = l_lo[idx] + offs
    heads, d, kv, mult, attn, emb, t_ne = (x[idx] for x in (heads, d, kv, mult, attn, emb, t_ne))
    if ffn_rule == "swiglu8/3":
        f = f_fixed[idx]
    else:
        # Free d_ffn: solve L * (attn + 3 d f + 2 d) + d = t_ne for f, round to the multiple, clip.
        f_exact = ((t_ne - d) / L - attn - 2 * d) / (3.0 * d)
        f = (np.round(f_exact / mult) * mult).astype(np.int64)
        f = np.clip(f, f_min[idx], f_max[idx])
    non_emb = L * (attn + 3 * d * f + 2 * d) + d
    return dict(heads=heads, d=d, kv=kv, L=L, f=f, non_emb=non_emb, emb=emb,
                head_dim=np.full(L.shape, head_dim, dtype=np.int64))


def search_shapes(
    target_params: float,
    *,
    non_embedding: bool = False,
    vocab_size: int = 32000,
    pad_vocab_to: int | None = 128,
    tp: int = 1,
    head_dim: int | Sequence[int] = 128,
    seq_len: int = 2048,
    tied: bool = False,
    gqa_ratio: int = 1,
    ffn_rule: str = "multiple256",
    aspect: tuple[float, float] = (32.0, 256.0),
    top: int = 10,
    ffn_multiple: int = 256,
    ffn_ratio: tuple[float, float] = (2.5, 4.0),
    micro_batch: int = 1,
    max_rel_error: float = 0.25,
) -> list[ShapeCandidate]:
    """Ranked Llama shapes whose total (or non-embedding) parameter count is near ``target_params``.

    ``head_dim`` may be a list (e.g. ``[64, 128]``) to search several at once; ``gqa_ratio`` R gives
    ``kv_heads = heads / R`` (1 = MHA). Returns at most ``top`` candidates, best (lowest score) first.
    Raises :class:`UserError` when no shape satisfies the hard constraints within ``max_rel_error``.
    """
    _check_inputs(target_params, vocab_size, pad_vocab_to, tp, gqa_ratio, ffn_rule, aspect, top,
                  ffn_ratio, micro_batch, max_rel_error, seq_len)
    head_dims = _as_head_dims(head_dim)
    target = float(target_params)
    v_pad = pad_vocab(vocab_size, pad_vocab_to, tp)
    emb_factor = 1 if tied else 2
    aspect = (float(aspect[0]), float(aspect[1]))
    g = _feasible(target, head_dims, non_embedding=non_embedding, v_pad=v_pad, emb_factor=emb_factor, tp=tp,
                  gqa_ratio=gqa_ratio, ffn_rule=ffn_rule, ffn_multiple=ffn_multiple,
                  ffn_ratio=(float(ffn_ratio[0]), float(ffn_ratio[1])), aspect=aspect, tol=float(max_rel_error))
    if g is None:
        raise UserError(_nothing_fits_message(target, non_embedding, v_pad, emb_factor, head_dims, tp,
                                              gqa_ratio, aspect, max_rel_error))
    rules = _rules(g, tp=tp, v_pad=v_pad, micro_batch=micro_batch, aspect=aspect)
    points = _score(g, rules, tp=tp, aspect=aspect)
    k = min(int(top), points["score"].size)
    order = np.argpartition(points["score"], k - 1)[:k] if points["score"].size > k else np.arange(points["score"].size)
    # score, then wider, then shallower
    order = order[np.lexsort((g["L"][order], -g["d"][order], points["score"][order]))]
    shape_kw = dict(vocab_size=int(vocab_size), seq_len=int(seq_len), tied=bool(tied), pad_vocab_to=pad_vocab_to,
                    tp=int(tp))
    return [_candidate(g, rules, points, i, rank, target=target, shape_kw=shape_kw)
            for rank, i in enumerate(order, start=1)]


def _feasible(target: float, head_dims: list[int], *, non_embedding: bool, tol: float, **grid_kw
              ) -> dict[str, np.ndarray] | None:
    """Every feasible shape over the head dims, within ``tol`` of the target (with ``params`` and
    ``rel`` added); None when there is none."""
    parts = [p for p in (_grid(target, hd, non_embedding=non_embedding, tol=tol, **grid_kw) for hd in head_dims) if p]
    if not parts:
        return None
    g = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    g["params"] = g["non_emb"] if non_embedding else g["non_emb"] + g["emb"]
    g["rel"] = g["params"] / target - 1.0
    keep = np.abs(g["rel"]) <= tol
    if not keep.any():
        return None
    return {k: v[keep] for k, v in g.items()}


def _rules(g: dict[str, np.ndarray], *, tp: int, v_pad: int, micro_batch: int, aspect: tuple[float, float]
           ) -> dict[str, np.ndarray]:
    """Each hard and soft rule (module docstring), per shape."""
    heads, d, kv, L, f, hd = g["heads"], g["d"], g["kv"], g["L"], g["f"], g["head_dim"]
    return {
        "megatron_heads_div_tp": heads % tp == 0,
        "megatron_kv_heads_tp": (kv % tp == 0) | (tp % kv == 0),
        "megatron_ffn_div_tp": f % tp == 0,
        "aspect_in_range": (d / L >= aspect[0]) & (d / L <= aspect[1]),
        "vocab_div_64": np.full(L.shape, v_pad % 64 == 0),
        "head_dim_pow2": _is_pow2(hd),
        "hidden_per_tp_pow2": _is_pow2(d // tp) | ((d // tp) % 64 == 0),
        "ba_over_t_integer": (micro_batch * heads) % tp == 0,
        "tp_within_node": np.full(L.shape, tp <= 8),
        "d_model_mult_64": d % 64 == 0,
        "d_ffn_mult_64": f % 64 == 0,
        "depth_at_least_2": L >= 2,
    }


def _score(g: dict[str, np.ndarray], rules: dict[str, np.ndarray], *, tp: int, aspect: tuple[float, float]
           ) -> dict[str, Any]:
    """The score's terms per shape (module docstring) and their sum ``score``, lower is better."""
    aspect_ratio = g["d"] / g["L"]
    aspect_pref = math.sqrt(aspect[0] * aspect[1])
    pts = {"aspect_ratio": aspect_ratio, "aspect_pref": aspect_pref, "err": 100.0 * np.abs(g["rel"]),
           "aspect": ASPECT_WEIGHT * np.abs(np.log2(aspect_ratio / aspect_pref)),
           "rule": sum(pen * ~rules[name] for name, pen in RULE_PENALTY.items()),
           "pow2": -POW2_BONUS * np.minimum(_pow2_valuation(g["d"] // tp), 10)}
    pts["score"] = pts["err"] + pts["aspect"] + pts["rule"] + pts["pow2"]
    return pts


def _candidate(g: dict[str, np.ndarray], rules: dict[str, np.ndarray], pts: dict[str, Any], i: int, rank: int, *,
               target: float, shape_kw: dict[str, Any]) -> ShapeCandidate:
    """Shape ``i`` of the grid as a ShapeCandidate, with its rules and the reasons for its rank."""
    d, tp = g["d"], shape_kw["tp"]
    shape = ModelShape(n_layers=int(g["L"][i]), d_model=int(d[i]), d_ffn=int(g["f"][i]), n_heads=int(g["heads"][i]),
                       n_kv_heads=int(g["kv"][i]), head_dim=int(g["head_dim"][i]), **shape_kw)
    cand_rules = {name: bool(v[i]) for name, v in rules.items()}
    broken = [name for name in RULE_PENALTY if not cand_rules[name]]
    why = (
        f"#{rank}: {100 * g['rel'][i]:+.2f}% vs target ({pts['err'][i]:.2f} pts), "
        f"aspect d/L={pts['aspect_ratio'][i]:.0f} vs preferred {pts['aspect_pref']:.0f} ({pts['aspect'][i]:.2f} pts), "
        + (f"breaks {', '.join(broken)} ({pts['rule'][i]:.1f} pts)" if broken else "meets every hardware rule")
        + f", d/TP divisible by 2^{min(int(_pow2_valuation(d[i:i + 1] // tp)[0]), 10)}"
    )
    return ShapeCandidate(shape=shape, params=int(g["params"][i]), target=target, rel_error=float(g["rel"][i]),
                          rules=cand_rules, score=float(pts["score"][i]), why=why, aspect=float(pts["aspect_ratio"][i]))


def _nothing_fits_message(target, non_embedding, v_pad, emb_factor, head_dims, tp, gqa_ratio, aspect,
                          tol) -> str:
    d_min = min(head_dims) * math.lcm(tp, gqa_ratio)  # heads are multiples of both
    emb_min = v_pad * d_min * emb_factor
    if not non_embedding and target <= emb_min * (1 + tol):
        return (
            f"target {target:,.0f} total params is not above the embedding alone "
            f"({v_pad:,} padded vocab x d_model {d_min} x {emb_factor} = {emb_min:,}); "
            "match non-embedding params instead (--non-embedding) or use a smaller vocab / tied embeddings"
        )
    return (
        f"no Llama shape within {100 * tol:.0f}% of {target:,.0f} "
        f"{'non-embedding' if non_embedding else 'total'} params fits head_dim {head_dims}, TP {tp}, "
        f"GQA ratio {gqa_ratio} and aspect d_model/n_layers in [{aspect[0]:g}, {aspect[1]:g}]; "
        "try a smaller head_dim, a wider aspect range or a different target"
    )
