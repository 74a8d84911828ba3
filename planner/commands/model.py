"""`scaleplan count` (exact parameters and FLOPs of one shape) and `scaleplan shape` (shape search).

Both are pure arithmetic over :mod:`planner.shape` and :mod:`planner.shape_search`; both print a
small table, or with ``--json`` the machine-readable payload.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

from planner.commands import emit, int_list, positive_int
from planner.errors import UserError

_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}
_COUNT_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmbgt]?)\s*$", re.IGNORECASE)

FLOPS_NOTES = {
    "flops_per_token_6n": ("6N", "6 x total params (Hoffmann et al. 2022's C = 6ND)"),
    "flops_per_token_palm": ("PaLM", "6 x (total - input embedding) + 12 L H Q T attention, not causal-halved"),
    "flops_per_token_megatron": ("Megatron", "6 x matmul weights (logits at padded vocab) + causal attention"),
}


def param_count(text: str) -> float:
    """argparse type for a parameter count: 1.8e9, 1800000000, 1.8B, 350M, 100k, 1T."""
    m = _COUNT_RE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"expected a parameter count like 1.8e9, 1.8B or 350M, got {text!r}")
    value = float(m.group(1)) * _SUFFIX[m.group(2).lower()]
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive parameter count, got {text!r}")
    return value


def _aspect_range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MIN,MAX like 32,256, got {text!r}") from None
    if not (0 < lo <= hi):
        raise argparse.ArgumentTypeError(f"expected 0 < MIN <= MAX, got {text!r}")
    return lo, hi


def _human_count(n: float) -> str:
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.0f}"


# ---------------------------------------------------------------------------------------- count
_SHAPE_FLAGS = {  # CLI dest -> ModelShape field
    "layers": "n_layers", "d_model": "d_model", "d_ffn": "d_ffn", "heads": "n_heads",
    "kv_heads": "n_kv_heads", "head_dim": "head_dim", "vocab": "vocab_size", "tied": "tied",
    "seq_len": "seq_len", "pad_vocab_to": "pad_vocab_to", "tp": "tp",
}
_REQUIRED = ("layers", "d_model", "d_ffn", "heads", "vocab")


def shape_from_args(args: argparse.Namespace):
    """Build the ModelShape that `count` describes: an HF config or a preset, then explicit flags."""
    from planner.shape import ModelShape, PRESETS

    overrides = {field: getattr(args, dest) for dest, field in _SHAPE_FLAGS.items()
                 if getattr(args, dest, None) is not None}
    if args.hf_config and args.preset:
        raise UserError("give either --hf-config or --preset, not both")
    if args.hf_config:
        path = Path(args.hf_config)
        if path.is_dir():
            path = path / "config.json"
        if path.exists() and not path.is_file():
            raise UserError(f"{path} is not a file; pass the path of a config.json")
        base = ModelShape.from_hf_config(path)
        if "n_heads" in overrides and "head_dim" not in overrides:
            overrides["head_dim"] = None  # re-derive d_model / heads
        return base.replace(**overrides) if overrides else base
    if args.preset:
        key = args.preset.lower()
        if key not in PRESETS:
            raise UserError(f"unknown model preset {args.preset!r}; known presets: {', '.join(sorted(PRESETS))}")
        return ModelShape(**{**PRESETS[key], **overrides, "name": key})
    missing = [f"--{d.replace('_', '-')}" for d in _REQUIRED if getattr(args, d, None) is None]
    if missing:
        raise UserError(f"missing {', '.join(missing)}; give the full shape, or --hf-config PATH, or --preset NAME")
    return ModelShape(**overrides)


def count_payload(shape) -> dict:
    """The `count --json` payload: shape fields plus every count of ModelShape.counts()."""
    return {**shape.to_dict(), **shape.counts()}


def count_text(shape) -> str:
    c = shape.counts()
    rows = [
        ("model", shape.name or "(custom)"),
        ("layers", f"{shape.n_layers:,}"),
        ("d_model", f"{shape.d_model:,}"),
        ("d_ffn", f"{shape.d_ffn:,}  ({shape.d_ffn / shape.d_model:.4g} x d_model)"),
        ("heads / kv heads", f"{shape.n_heads} / {shape.n_kv_heads}  (head_dim {shape.head_dim})"),
        ("vocab (padded)", f"{shape.vocab_size:,} -> {shape.padded_vocab:,}"),
        ("tied embeddings", "yes" if shape.tied else "no"),
        ("seq_len", f"{shape.seq_len:,}"),
        ("", ""),
        ("total params", f"{c['total_params']:,}  ({_human_count(c['total_params'])})"),
        ("non-embedding", f"{c['non_embedding_params']:,}  ({_human_count(c['non_embedding_params'])})"),
        ("embedding", f"{c['embedding_params']:,}  (input {c['input_embedding_params']:,}"
                      f" + output {c['output_params']:,})"),
        ("per layer", f"{c['params_per_layer']:,}"),
        ("", ""),
        ("FLOPs/token", "training (forward + backward), 2 FLOPs per multiply-add"),
    ]
    for key, (label, note) in FLOPS_NOTES.items():
        rows.append((f"  {label}", f"{c[key]:.5e}  {note}"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}".rstrip() for k, v in rows)


def cmd_count(args: argparse.Namespace) -> int:
    shape = shape_from_args(args)
    emit(args, count_payload(shape), count_text(shape))
    return 0


# ---------------------------------------------------------------------------------------- shape
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
        ffn_rule=args.ffn_rule, aspect=args.aspect, top=args.top, micro_batch=args.micro_batch,
        max_rel_error=args.max_error / 100.0,
    )
    emit(args, [c.to_dict() for c in cands], shape_text(cands, args))
    return 0


# ---------------------------------------------------------------------------------------- register
def register(sub) -> None:
    p = sub.add_parser(
        "count", help="exact parameter counts and FLOPs/token of a Llama-style shape",
        description="Exact parameter counts (total, non-embedding, embedding at the padded vocab) and "
                    "training FLOPs per token under three conventions (6N, PaLM, Megatron) of a Llama-style "
                    "decoder, from a Hugging Face config.json, a preset, or explicit sizes.",
        epilog="examples:\n  scaleplan count --preset llm-jp-3-1.8b\n"
               "  scaleplan count --hf-config path/to/config.json --json\n"
               "  scaleplan count --layers 24 --d-model 2048 --d-ffn 7168 --heads 16 --vocab 99487 "
               "--pad-vocab-to 128 --seq-len 4096",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_argument_group("source (one of, or the explicit sizes below)")
    src.add_argument("--hf-config", metavar="PATH", help="a Hugging Face config.json (or the folder holding it)")
    src.add_argument("--preset", metavar="NAME", help="a published shape, e.g. llama-2-7b, llm-jp-3-1.8b")
    g = p.add_argument_group("shape (override the source, or give all of layers/d-model/d-ffn/heads/vocab)")
    g.add_argument("--layers", type=positive_int, help="number of transformer blocks")
    g.add_argument("--d-model", type=positive_int, help="hidden size")
    g.add_argument("--d-ffn", type=positive_int, help="SwiGLU inner size")
    g.add_argument("--heads", type=positive_int, help="attention (query) heads")
    g.add_argument("--kv-heads", type=positive_int, help="key/value heads (GQA); default: heads")
    g.add_argument("--head-dim", type=positive_int, help="default: d_model / heads")
    g.add_argument("--vocab", type=positive_int, help="tokenizer vocabulary size (before padding)")
    g.add_argument("--tied", action="store_const", const=True, default=None, help="tie input and output embeddings")
    g.add_argument("--seq-len", type=positive_int, help="sequence length for the attention FLOPs (default 2048)")
    g.add_argument("--pad-vocab-to", type=positive_int,
                   help="Megatron padding: vocab -> ceil(V / (M*TP)) * M*TP (Megatron's default M is 128)")
    g.add_argument("--tp", type=positive_int, help="tensor-parallel size (affects vocab padding only)")
    p.add_argument("--json", action="store_true", help="print the counts as JSON")
    p.set_defaults(func=cmd_count)

    q = sub.add_parser(
        "shape", help="search Llama shapes near a parameter target, hardware-friendly first",
        description="Enumerate Llama-style shapes (layers, d_model, heads, kv heads, d_ffn) whose exact "
                    "parameter count is near the target, keep those Megatron accepts at the given TP, and rank "
                    "them by closeness, hardware-friendliness (Anthony et al. 2024; NVIDIA's matmul guide) and "
                    "aspect ratio (Kaplan et al. 2020).",
        epilog="examples:\n  scaleplan shape --params 1.8B --vocab 99487\n"
               "  scaleplan shape --params 70B --tp 8 --gqa-ratio 8 --vocab 128256 --json\n"
               "  scaleplan shape --params 1e6 --non-embedding --vocab 4096 --head-dim 16",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    q.add_argument("--params", type=param_count, required=True, help="target count: 1.8e9, 1.8B, 350M, 100k")
    q.add_argument("--non-embedding", action="store_true", help="match non-embedding params (default: total)")
    q.add_argument("--vocab", type=positive_int, default=32000, help="tokenizer vocabulary size (default 32000)")
    q.add_argument("--pad-vocab-to", type=positive_int, default=128, help="Megatron vocab padding multiple (128)")
    q.add_argument("--tp", type=positive_int, default=1, help="tensor-parallel size (default 1)")
    q.add_argument("--head-dim", type=int_list, default=[128], metavar="D[,D...]",
                   help="head dim(s) to try, e.g. 128 or 64,128 (default 128)")
    q.add_argument("--gqa-ratio", type=positive_int, default=1, help="heads per kv head (1 = MHA; default 1)")
    q.add_argument("--seq-len", type=positive_int, default=2048, help="sequence length for FLOPs (default 2048)")
    q.add_argument("--tied", action="store_true", help="tie input and output embeddings")
    q.add_argument("--ffn-rule", choices=["multiple256", "swiglu8/3"], default="multiple256",
                   help="multiple256: free d_ffn, a multiple of 256 in 2.5..4 x d_model; "
                        "swiglu8/3: ceil(8/3 d / 256) * 256 (Llama)")
    q.add_argument("--aspect", type=_aspect_range, default=(32.0, 256.0), metavar="MIN,MAX",
                   help="allowed d_model / n_layers (default 32,256)")
    q.add_argument("--micro-batch", type=positive_int, default=1, help="micro-batch b for the (b*a)/t rule")
    q.add_argument("--max-error", type=float, default=25.0, metavar="PCT",
                   help="drop shapes further than this many percent from the target (default 25)")
    q.add_argument("--top", type=positive_int, default=5, help="how many candidates to show (default 5)")
    q.add_argument("--json", action="store_true", help="print the candidates as a JSON list, best first")
    q.set_defaults(func=cmd_shape)
