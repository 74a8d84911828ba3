"""CLI: ``scaleplan data prepare``, ``scaleplan train``, ``scaleplan coord-check``.

No torch at module level (``scaleplan --help`` must start fast); handlers import the library.
"""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

from planner.commands import emit, fraction, int_list, nonneg_float, positive_float, positive_int


def _command_line() -> str:
    return "scaleplan " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def register(sub) -> None:
    # ---------------------------------------------------------------- data prepare
    data = sub.add_parser("data", help="prepare a tokenized corpus for proxy training",
                          description="Corpus tools for proxy training.")
    dsub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", parser_class=sub._parser_class)
    p = dsub.add_parser("prepare", help="tokenize a corpus into DIR (tokenizer.json, train.bin, val.bin, meta.json)",
                        description="Tokenize a corpus: train a byte-level BPE (or use bytes / a tokenizer.json), "
                                    "split documents into train/val by a hash of their id, write token files.")
    p.add_argument("--out", required=True, help="output folder (built in a temp folder, then renamed)")
    p.add_argument("--source", default="stdlib",
                   help="stdlib (this Python's standard-library sources; default), a .txt/.jsonl/.parquet file "
                        "or folder, or hf:NAME (needs the `datasets` package)")
    p.add_argument("--tokenizer", default="bpe", help="bpe (train one; default), bytes, or PATH/tokenizer.json")
    p.add_argument("--vocab", type=positive_int, default=4096, help="BPE vocab size (default 4096)")
    p.add_argument("--max-mb", type=positive_float, default=12.0, help="cap on corpus size in MiB (default 12)")
    p.add_argument("--val-frac", type=positive_float, default=0.05, help="validation fraction of documents (0.05)")
    p.add_argument("--text-field", default="text", help="text column/field for .jsonl/.parquet/hf (default text)")
    p.add_argument("--force", action="store_true", help="replace an existing, different data folder")
    p.add_argument("--json", action="store_true", help="print meta.json as JSON")
    p.set_defaults(func=cmd_data_prepare)
    data.set_defaults(func=lambda args: (data.print_help(), 2)[1])

    # ---------------------------------------------------------------- train
    t = sub.add_parser("train", help="train one μP/SP proxy model -> RUN_DIR/run.json",
                       description="Train a Llama-style proxy (RMSNorm, SwiGLU, RoPE, untied) under μP or SP. "
                                   "Resumable: rerun the same command to continue or to get the finished record.")
    t.add_argument("--data", required=True, help="data folder from `scaleplan data prepare`")
    t.add_argument("--d-model", type=positive_int, required=True)
    t.add_argument("--n-layers", type=positive_int, required=True)
    heads = t.add_mutually_exclusive_group()
    heads.add_argument("--heads", type=positive_int, help="fixed number of heads (head size = d_model / heads)")
    heads.add_argument("--head-dim", type=positive_int, help="fixed head size (default 32; heads = d_model / head_dim)")
    t.add_argument("--param", choices=("mup", "sp"), default=None, help="parameterization (default mup)")
    t.add_argument("--base-width", type=positive_int, help="μP base width (default 128)")
    t.add_argument("--base-depth", type=positive_int, help="base depth for --depth-scaling (default n_layers)")
    t.add_argument("--depth-scaling", choices=("none", "depth-mup", "completep"), help="residual scaling (none)")
    t.add_argument("--lr", type=positive_float, help="base AdamW LR (default 0.01)")
    t.add_argument("--init-std", type=positive_float, help="base init std (default 0.02)")
    t.add_argument("--out-mult", type=positive_float, help="output (logit) multiplier α_out (1)")
    t.add_argument("--in-mult", type=positive_float, help="embedding multiplier α_in (1)")
    t.add_argument("--attn-mult", type=positive_float, help="attention multiplier (1)")
    t.add_argument("--wd", type=nonneg_float, help="weight decay (0)")
    t.add_argument("--wd-rule", choices=("mup", "unscaled"), help="mup: MuAdamW hidden wd x m_d; unscaled")
    length = t.add_mutually_exclusive_group()
    length.add_argument("--tokens", type=positive_int, help="token budget")
    length.add_argument("--steps", type=positive_int, help="optimizer steps")
    t.add_argument("--batch", type=positive_int, default=16, help="sequences per step (16)")
    t.add_argument("--seq-len", type=positive_int, default=128, help="tokens per sequence (128)")
    t.add_argument("--schedule", choices=("cosine", "wsd", "constant"), default="cosine")
    t.add_argument("--warmup-frac", type=fraction, help="warmup fraction of steps (0.05)")
    t.add_argument("--cooldown-frac", type=fraction, default=0.2, help="WSD cooldown fraction (0.2)")
    t.add_argument("--min-lr-frac", type=fraction, default=0.1, help="final LR / peak LR (0.1)")
    t.add_argument("--clip", type=nonneg_float, default=1.0, help="gradient-norm clip, 0 = off (1.0)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=positive_int, default=1, help="torch threads (1)")
    t.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    t.add_argument("--compile", action="store_true", help="torch.compile the model")
    t.add_argument("--eval-every", type=positive_int, help="steps between evaluations (about 10 per run)")
    t.add_argument("--hparams", help="hparams.yaml from `scaleplan sweep export` (explicit flags win)")
    t.add_argument("--out", required=True, help="run folder (run.json, ckpt.pt while running)")
    t.add_argument("--json", action="store_true", help="print run.json (without curves) as JSON")
    t.set_defaults(func=cmd_train)

    # ---------------------------------------------------------------- coord-check
    c = sub.add_parser("coord-check", help="μP coordinate check: activations must not grow with width",
                       description="Train each width a few AdamW steps on one fixed batch (mup's get_coord_data) and "
                                   "fit log2 mean|activation| against log2 width; pass iff |slope| < 0.15 for every "
                                   "module at every step t >= 2. μP should pass, SP should fail.")
    c.add_argument("--param", choices=("mup", "sp"), default="mup")
    c.add_argument("--widths", type=int_list, default=[32, 64, 128, 256])
    c.add_argument("--steps", type=positive_int, default=4)
    c.add_argument("--lr", type=positive_float, default=1e-2, help="AdamW LR (larger than a training LR; 0.01)")
    c.add_argument("--n-layers", type=positive_int, default=2)
    c.add_argument("--head-dim", type=positive_int, default=16)
    c.add_argument("--seeds", type=positive_int, default=3)
    c.add_argument("--data", help="use a batch of this data folder (default: random tokens)")
    c.add_argument("--out", help="folder for coord_check.json and coord_check.html")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_coord_check)


def cmd_data_prepare(args) -> int:
    from proxy_train.data import prepare_data

    meta = prepare_data(args.out, source=args.source, tokenizer=args.tokenizer, vocab=args.vocab,
                        max_mb=args.max_mb, val_frac=args.val_frac, text_field=args.text_field,
                        force=args.force, command=_command_line())
    emit(args, meta, f"{args.out}: {meta['train_tokens']:,} train + {meta['val_tokens']:,} val tokens, "
                     f"vocab {meta['tokenizer_vocab']} (model vocab {meta['vocab_size']}), {meta['dtype']}, "
                     f"sha256 {meta['sha256'][:12]}")
    return 0


_TRAIN_FLAGS = {  # argparse dest -> TrainConfig field (None on the command line = not given)
    "heads": "n_heads", "head_dim": "head_dim", "param": "param", "base_width": "base_width",
    "base_depth": "base_depth", "depth_scaling": "depth_scaling", "lr": "lr", "init_std": "init_std",
    "out_mult": "out_mult", "in_mult": "in_mult", "attn_mult": "attn_mult", "wd": "wd", "wd_rule": "wd_rule",
    "tokens": "tokens", "steps": "steps", "warmup_frac": "warmup_frac", "eval_every": "eval_every",
}


def config_from_args(args):
    from proxy_train.config import TrainConfig, hparams_overrides
    from proxy_train.data import TokenData

    fields = dict(data=args.data, d_model=args.d_model, n_layers=args.n_layers, batch=args.batch,
                  seq_len=args.seq_len, schedule=args.schedule, cooldown_frac=args.cooldown_frac,
                  min_lr_frac=args.min_lr_frac, clip=args.clip, seed=args.seed, threads=args.threads,
                  device=args.device, compile=args.compile)
    extra = {"command": _command_line()}
    if args.hparams:
        hp = hparams_overrides(args.hparams, TokenData(args.data).vocab_size)
        extra.update(hp.pop("extra"))
        if args.heads is not None:
            hp.pop("head_dim", None)
        fields.update(hp)
    fields.update({f: getattr(args, a) for a, f in _TRAIN_FLAGS.items() if getattr(args, a) is not None})
    return TrainConfig(**fields, extra=extra).validate()


def cmd_train(args) -> int:
    from proxy_train.train import train

    cfg = config_from_args(args)
    rec = train(cfg, args.out)
    brief = {k: v for k, v in rec.items() if k not in ("curve", "config")}
    line = (f"{args.out}: status {rec['status']}"
            + (f" ({rec['reason']})" if rec.get("reason") else "")
            + f", N={rec['total_params']:,} ({rec['non_embedding_params']:,} non-embedding), "
              f"D={rec['tokens']:,} tokens, C={rec['flops']:.3g} FLOPs, "
              f"train loss {rec['final_train_loss']:.4f}, val loss {rec['final_val_loss']:.4f} nats/token, "
              f"{rec['tokens_per_s'] or 0:,.0f} tokens/s")
    emit(args, brief, line)
    return 0


def cmd_coord_check(args) -> int:
    import torch

    from proxy_train.coord_check import coord_check

    torch.set_num_threads(1)
    if args.out:
        from planner.io import check_creatable

        check_creatable(args.out, "--out folder")  # before minutes of work, not after
    r = coord_check(args.param, args.widths, args.steps, args.lr, n_layers=args.n_layers, head_dim=args.head_dim,
                    seeds=args.seeds, data=args.data, out=args.out, progress=True)
    brief = {k: v for k, v in r.items() if k != "l1"}
    w = r["worst"]
    line = (f"coord check {args.param}: {'PASS' if r['passed'] else 'FAIL'} "
            f"(worst slope {w['slope']:+.3f} at {w['module']}, t={w['t']}; {r['n_failing']} module-steps "
            f"over the limit; {r['criterion']})" + (f"; figure {Path(args.out) / 'coord_check.html'}" if args.out else ""))
    emit(args, brief, line)
    return 0 if r["passed"] or args.param == "sp" else 1
