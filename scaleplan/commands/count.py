"""`scaleplan count`: exact parameter counts and FLOPs/token of one Llama-style shape.

Pure arithmetic over :mod:`planner.shape`; prints a small table, or with ``--json`` the payload.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from planner.errors import UserError
from scaleplan.commands import emit
from scaleplan.commands.guards import MAX_LAYERS, MAX_WIDTH, bounded_int

FLOPS_NOTES = {
    "flops_per_token_6n": ("6N", "6 x total params (Hoffmann et al. 2022's C = 6ND)"),
    "flops_per_token_palm": ("PaLM", "6 x (total - input embedding) + 12 L H Q T attention, not causal-halved"),
    "flops_per_token_megatron": ("Megatron", "6 x matmul weights (logits at padded vocab) + causal attention"),
}


def _human_count(n: float) -> str:
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.0f}"


#: Shape limits (issue 18): far beyond published models (proxy_train/limits.py for widths and depth;
#: Llama 3 405B's FFN is 53,248 wide, arXiv:2407.21783 Table 3; token ids are stored as uint32;
#: the longest published context is 10M tokens, Llama 4 Scout).
LAYERS = bounded_int(1, MAX_LAYERS, why="no published model is deeper than 126 layers")
WIDTH = bounded_int(1, MAX_WIDTH, why="no published model is wider than 18432")
FFN = bounded_int(1, 2**20)
VOCAB = bounded_int(1, 2**32)
SEQ = bounded_int(1, 2**26)
PAD = bounded_int(1, 2**16)

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


def add_shape_arguments(p: argparse.ArgumentParser) -> None:
    """The model-shape options shared by `count` and `loss`: an HF config, a preset, or explicit sizes."""
    src = p.add_argument_group("source (one of, or the explicit sizes below)")
    src.add_argument("--hf-config", metavar="PATH", help="a Hugging Face config.json (or the folder holding it)")
    src.add_argument("--preset", metavar="NAME", help="a published shape, e.g. llama-2-7b, llm-jp-3-1.8b")
    g = p.add_argument_group("shape (override the source, or give all of layers/d-model/d-ffn/heads/vocab)")
    g.add_argument("--layers", type=LAYERS, help="number of transformer blocks")
    g.add_argument("--d-model", type=WIDTH, help="hidden size")
    g.add_argument("--d-ffn", type=FFN, help="SwiGLU inner size")
    g.add_argument("--heads", type=WIDTH, help="attention (query) heads")
    g.add_argument("--kv-heads", type=WIDTH, help="key/value heads (GQA); default: heads")
    g.add_argument("--head-dim", type=WIDTH, help="default: d_model / heads")
    g.add_argument("--vocab", type=VOCAB, help="tokenizer vocabulary size (before padding)")
    g.add_argument("--tied", action="store_const", const=True, default=None, help="tie input and output embeddings")
    g.add_argument("--seq-len", type=SEQ, help="sequence length for the attention FLOPs (default 2048)")
    g.add_argument("--pad-vocab-to", type=PAD,
                   help="Megatron padding: vocab -> ceil(V / (M*TP)) * M*TP (Megatron's default M is 128)")
    g.add_argument("--tp", type=PAD, help="tensor-parallel size (affects vocab padding only)")


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
    add_shape_arguments(p)
    p.add_argument("--json", action="store_true", help="print the counts as JSON")
    p.set_defaults(func=cmd_count)
