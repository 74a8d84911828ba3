"""`scaleplan shape`: Llama shapes near a parameter target, hardware-friendly first.

Pure arithmetic over :mod:`planner.shape_search`; prints a small table, or with ``--json`` the list.
"""
from __future__ import annotations

import argparse
import re

from scaleplan.commands import emit
from scaleplan.commands.count import PAD, SEQ, VOCAB, WIDTH
from scaleplan.commands.guards import MAX_WIDTH, bounded_float, bounded_int, bounded_int_list

_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}
_COUNT_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmbgt]?)\s*$", re.IGNORECASE)


def param_count(text: str) -> float:
    """argparse type for a parameter count: 1.8e9, 1800000000, 1.8B, 350M, 100k, 1T."""
    m = _COUNT_RE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"expected a parameter count like 1.8e9, 1.8B or 350M, got {text!r}")
    value = float(m.group(1)) * _SUFFIX[m.group(2).lower()]
    if not 1 <= value <= MAX_COUNT:
        raise argparse.ArgumentTypeError(f"expected a count from 1 to {MAX_COUNT:g}, got {text!r}")
    return value


#: Largest count accepted for parameters or tokens: all public human text is ~3e14 tokens (Villalobos
#: et al. 2024, arXiv:2211.04325) and the largest published models have ~2e12 parameters; 1e18 is beyond both.
MAX_COUNT = 1e18


def _aspect_range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MIN,MAX like 32,256, got {text!r}") from None
    if not (0 < lo <= hi < float("inf")):
        raise argparse.ArgumentTypeError(f"expected 0 < MIN <= MAX, got {text!r}")
    return lo, hi


def shape_text(cands, args) -> str:
    which = "non-embedding" if args.non_embedding else "total"
    head = ("#", "layers", "d_model", "d_ffn", "heads", "kv", f"{which} params", "error", "d/L", "score")
    rows = []
    for i, c in enumerate(cands, 1):
        s = c.shape
        rows.append((str(i), str(s.n_layers), f"{s.d_model:,}", f"{s.d_ffn:,}", str(s.n_heads), str(s.n_kv_heads),
                     f"{c.params:,}", f"{100 * c.rel_error:+.2f}%", f"{c.aspect:.0f}", f"{c.score:.2f}"))
    widths = [max(len(r[j]) for r in [head, *rows]) for j in range(len(head))]
    fmt = lambda r: "  ".join(v.rjust(w) for v, w in zip(r, widths))  # noqa: E731
    lines = [f"target {args.params:,.0f} {which} params; padded vocab {cands[0].shape.padded_vocab:,}, "
             f"TP {args.tp}; lower score is better", fmt(head), *map(fmt, rows), ""]
    lines += [c.why for c in cands]
    return "\n".join(lines)


def cmd_shape(args: argparse.Namespace) -> int:
    from planner.shape_search import search_shapes

    cands = search_shapes(
        args.params, non_embedding=args.non_embedding, vocab_size=args.vocab, pad_vocab_to=args.pad_vocab_to,
        tp=args.tp, head_dim=args.head_dim, seq_len=args.seq_len, tied=args.tied, gqa_ratio=args.gqa_ratio,
        kv_heads=args.kv_heads, ffn_rule=args.ffn_rule, aspect=args.aspect, top=args.top,
        micro_batch=args.micro_batch, max_rel_error=args.max_error / 100.0, family=not args.no_family,
    )
    emit(args, [c.to_dict() for c in cands], shape_text(cands, args))
    return 0


def register(sub) -> None:
    q = sub.add_parser(
        "shape", help="search Llama shapes near a parameter target, hardware-friendly first",
        description="Enumerate Llama-style shapes (layers, d_model, heads, kv heads, d_ffn) whose exact "
                    "parameter count is near the target, keep those Megatron accepts at the given TP, and rank "
                    "them by closeness, hardware-friendliness (Anthony et al. 2024; NVIDIA's matmul guide) and "
                    "aspect ratio (Kaplan et al. 2020).",
        epilog="examples:\n  scaleplan shape --params 1.8B --vocab 99487\n"
               "  scaleplan shape --params 70B --tp 8 --gqa-ratio 8 --vocab 128256 --json\n"
               "  scaleplan shape --params 1e6 --non-embedding --vocab 4096 --head-dim 16 --no-family",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    q.add_argument("--params", type=param_count, required=True, help="target count: 1.8e9, 1.8B, 350M, 100k")
    q.add_argument("--non-embedding", action="store_true", help="match non-embedding params (default: total)")
    q.add_argument("--vocab", type=VOCAB, default=32000, help="tokenizer vocabulary size (default 32000)")
    q.add_argument("--pad-vocab-to", type=PAD, default=128, help="Megatron vocab padding multiple (128)")
    q.add_argument("--tp", type=PAD, default=1, help="tensor-parallel size (default 1)")
    q.add_argument("--head-dim", type=bounded_int_list(1, MAX_WIDTH, "head sizes"), metavar="D[,D...]",
                   help="head dim(s) to try, e.g. 128 or 64,128 (default: the family rule, 128; 64 below 1B)")
    q.add_argument("--gqa-ratio", type=WIDTH,
                   help="heads per kv head (1 = MHA; default: the family rule, 8 kv heads from d_model 4096)")
    q.add_argument("--kv-heads", type=WIDTH, help="pin the number of kv heads")
    q.add_argument("--no-family", action="store_true",
                   help="drop the published-family rules (planner/shape_families.py): any Megatron-valid shape")
    q.add_argument("--seq-len", type=SEQ, default=2048, help="sequence length for FLOPs (default 2048)")
    q.add_argument("--tied", action="store_true", help="tie input and output embeddings")
    q.add_argument("--ffn-rule", choices=["multiple256", "swiglu8/3"], default="multiple256",
                   help="multiple256: free d_ffn, a multiple of 256 in 2.5..4 x d_model; "
                        "swiglu8/3: ceil(8/3 d / 256) * 256 (Llama)")
    q.add_argument("--aspect", type=_aspect_range, metavar="MIN,MAX",
                   help="allowed d_model / n_layers (default: the published families' band)")
    q.add_argument("--micro-batch", type=bounded_int(1, 2**20), default=1, help="micro-batch b for the (b*a)/t rule")
    q.add_argument("--max-error", type=bounded_float(0, 1000, what="percent"), default=25.0, metavar="PCT",
                   help="drop shapes further than this many percent from the target (default 25)")
    q.add_argument("--top", type=bounded_int(1, 1000), default=5, help="how many candidates to show (default 5)")
    q.add_argument("--json", action="store_true", help="print the candidates as a JSON list, best first")
    q.set_defaults(func=cmd_shape)
