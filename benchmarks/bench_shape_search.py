"""Speed of `search_shapes` against a plain-Python enumeration of the same grid, side by side.

Goal (the dashboard recomputes a plan in <= 100 ms): a typical shape search <= 30 ms.
The baseline builds one ModelShape per (heads, layers) point inside the aspect band, with d_ffn
solved the same way (the free multiple-of-256 in 2.5..4 x d_model nearest to the target), which
is what a straightforward implementation would do. Both must find the same closest count (the
search's check uses every candidate, not just the top 10 by score).

Run:  .venv/bin/python benchmarks/bench_shape_search.py
"""
from __future__ import annotations

import math
import time

from planner.shape import ModelShape
from planner.shape_search import ffn_multiple_for, search_shapes

CASES = [
    ("1.8B total, vocab 99,487, TP 1", dict(target_params=1.8e9, vocab_size=99487)),
    ("7B total, TP 8, GQA 4", dict(target_params=7e9, tp=8, gqa_ratio=4)),
    ("70B total, TP 8, GQA 8, head_dim 64,128", dict(target_params=70e9, vocab_size=128256, tp=8, gqa_ratio=8,
                                                    head_dim=[64, 128])),
    ("1e6 non-embedding, vocab 4096, head_dim 16", dict(target_params=1e6, non_embedding=True, vocab_size=4096,
                                                       head_dim=16)),
]


def naive_best(target_params, non_embedding=False, vocab_size=32000, tp=1, head_dim=128, gqa_ratio=1,
               aspect=(32.0, 256.0)):
    """Closest |params - target| over the full grid, one ModelShape at a time."""
    head_dims = [head_dim] if isinstance(head_dim, int) else head_dim
    best = None
    for hd in head_dims:
        step = math.lcm(tp, gqa_ratio)
        heads = step
        while True:
            d = heads * hd
            if 9.5 * d * d > target_params * 1.25:  # even one layer is too big
                break
            kv = heads // gqa_ratio
            if kv % tp == 0 or tp % kv == 0:
                m = int(ffn_multiple_for(d, 256, tp))
                f_lo = max(m, math.ceil(2.5 * d / m) * m)
                f_hi = max(f_lo, math.floor(4.0 * d / m) * m)
                for layers in range(max(1, math.ceil(d / aspect[1])), math.floor(d / aspect[0]) + 1):
                    attn = 2 * d * d + 2 * d * kv * hd
                    body = target_params if non_embedding else target_params - 2 * d * (
                        math.ceil(vocab_size / (128 * tp)) * 128 * tp)
                    f_exact = ((body - d) / layers - attn - 2 * d) / (3 * d)
                    f = min(max(round(f_exact / m) * m, f_lo), f_hi)
                    s = ModelShape(n_layers=layers, d_model=d, d_ffn=f, n_heads=heads, n_kv_heads=kv,
                                   head_dim=hd, vocab_size=vocab_size, pad_vocab_to=128, tp=tp)
                    p = s.non_embedding_params if non_embedding else s.total_params
                    if best is None or abs(p - target_params) < abs(best - target_params):
                        best = p
            heads += step
    return best


def timed(fn, repeat):
    t0 = time.perf_counter()
    for _ in range(repeat):
        out = fn()
    return (time.perf_counter() - t0) / repeat, out


def main() -> None:
    print(f"{'case':44s} {'search_shapes':>14s} {'naive loop':>12s} {'speed-up':>9s}  best |err| (search / naive)")
    for label, kw in CASES:
        # like for like with the naive loop: no family rules, the loop's aspect band
        free = dict(kw, family=False, aspect=(32.0, 256.0))
        t_fast, cands = timed(lambda: search_shapes(**free, top=10), repeat=20)
        t_slow, best = timed(lambda: naive_best(**kw), repeat=1)
        every = search_shapes(**free, top=10**6)
        err_fast = min(abs(c.params / kw["target_params"] - 1) for c in every)
        err_slow = abs(best / kw["target_params"] - 1)
        print(f"{label:44s} {t_fast * 1e3:11.2f} ms {t_slow * 1e3:9.0f} ms {t_slow / t_fast:8.1f}x"
              f"  {err_fast:.2e} / {err_slow:.2e}")


if __name__ == "__main__":
    main()
