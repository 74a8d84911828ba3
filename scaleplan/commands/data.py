"""`scaleplan data prepare`: tokenize a corpus into a proxy-training data folder.

No torch at module level (``scaleplan --help`` must start fast); the handler imports the library.
"""
from __future__ import annotations

from planner.provenance import command_line
from scaleplan.commands import emit, guards, positive_float


def register(sub) -> None:
    data = sub.add_parser("data", help="prepare a tokenized corpus for proxy training",
                          description="Corpus tools for proxy training.")
    dsub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", parser_class=sub._parser_class)
    p = dsub.add_parser("prepare", help="tokenize a corpus into DIR (tokenizer.json, train.bin, val.bin, meta.json)",
                        description="Tokenize a corpus: train a byte-level BPE (or use bytes / a tokenizer.json), "
                                    "split documents into train/val by a hash of their id, write token files.")
    p.add_argument("--out", required=True, type=guards.folder,
                   help="output folder (built in a temp folder, then renamed)")
    p.add_argument("--source", default="stdlib",
                   help="stdlib (this Python's standard-library sources; default), a .txt/.jsonl/.parquet file "
                        "or folder, or hf:NAME (needs the `datasets` package)")
    p.add_argument("--tokenizer", default="bpe", help="bpe (train one; default), bytes, or PATH/tokenizer.json")
    p.add_argument("--vocab", type=guards.vocab, default=4096,
                   help=f"BPE vocab size, 257..{guards.MAX_VOCAB:,} (default 4096)")
    p.add_argument("--max-mb", type=guards.megabytes, default=12.0, help="cap on corpus size in MiB (default 12)")
    p.add_argument("--val-frac", type=positive_float, default=0.05, help="validation fraction of documents (0.05)")
    p.add_argument("--text-field", default="text", help="text column/field for .jsonl/.parquet/hf (default text)")
    p.add_argument("--force", action="store_true", help="replace an existing, different data folder")
    p.add_argument("--json", action="store_true", help="print meta.json as JSON")
    p.set_defaults(func=cmd_data_prepare)
    data.set_defaults(func=_no_subcommand)


def _no_subcommand(args) -> int:
    from planner.errors import UserError

    raise UserError("scaleplan data needs a subcommand: `scaleplan data prepare --out DIR` "
                    "(see `scaleplan data --help`)")


def cmd_data_prepare(args) -> int:
    from proxy_train.data import data_summary, prepare_data

    meta = prepare_data(args.out, source=args.source, tokenizer=args.tokenizer, vocab=args.vocab,
                        max_mb=args.max_mb, val_frac=args.val_frac, text_field=args.text_field,
                        force=args.force, command=command_line())
    emit(args, meta, data_summary(args.out, meta))
    return 0
