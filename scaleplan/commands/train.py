"""`scaleplan train`: one μP/SP proxy run, resumable, -> RUN_DIR/run.json and RUN_DIR/model.pt
(the final weights, for a later ``--inherit-from``); ``--inherit-from RUN_DIR --inherit-layers K``
starts from the first K layers of a finished run (proxy_train.inherit).
"""
from __future__ import annotations

from planner.provenance import command_line
from scaleplan.commands import emit, fraction, guards, nonneg_float


def register(sub) -> None:
    t = sub.add_parser("train", help="train one μP/SP proxy model -> RUN_DIR/run.json",
                       description="Train a Llama-style proxy (RMSNorm, SwiGLU, RoPE, untied) under μP or SP. "
                                   "Resumable: rerun the same command to continue or to get the finished record.")
    t.add_argument("--data", required=True, help="data folder from `scaleplan data prepare`")
    t.add_argument("--d-model", type=guards.width, required=True)
    t.add_argument("--n-layers", type=guards.layers, help="depth (required unless --inherit-layers gives it)")
    heads = t.add_mutually_exclusive_group()
    heads.add_argument("--heads", type=guards.width, help="fixed number of heads (head size = d_model / heads)")
    heads.add_argument("--head-dim", type=guards.width, help="fixed head size (default 32; heads = d_model / head_dim)")
    t.add_argument("--param", choices=("mup", "sp"), default=None, help="parameterization (default mup)")
    t.add_argument("--base-width", type=guards.width, help="μP base width (default 128)")
    t.add_argument("--base-depth", type=guards.layers, help="base depth for --depth-scaling (default n_layers)")
    t.add_argument("--depth-scaling", choices=("none", "depth-mup", "completep"), help="residual scaling (none)")
    t.add_argument("--lr", type=guards.lr, help="base AdamW LR (default 0.01)")
    t.add_argument("--init-std", type=guards.init_std, help="base init std (default 0.02)")
    t.add_argument("--out-mult", type=guards.mult, help="output (logit) multiplier α_out (1)")
    t.add_argument("--in-mult", type=guards.mult, help="embedding multiplier α_in (1)")
    t.add_argument("--attn-mult", type=guards.mult, help="attention multiplier (1)")
    t.add_argument("--wd", type=guards.weight_decay, help="weight decay (0)")
    t.add_argument("--wd-rule", choices=("mup", "unscaled"), help="mup: MuAdamW hidden wd x m_d; unscaled")
    length = t.add_mutually_exclusive_group()
    length.add_argument("--tokens", type=guards.tokens, help="token budget")
    length.add_argument("--steps", type=guards.steps, help="optimizer steps")
    t.add_argument("--batch", type=guards.batch, default=16, help="sequences per step (16)")
    t.add_argument("--seq-len", type=guards.seq_len, default=128, help="tokens per sequence (128)")
    t.add_argument("--schedule", choices=("cosine", "wsd", "constant"), default="cosine")
    t.add_argument("--warmup-frac", type=fraction, help="warmup fraction of steps (0.05)")
    t.add_argument("--cooldown-frac", type=fraction, default=0.2, help="WSD cooldown fraction (0.2)")
    t.add_argument("--min-lr-frac", type=fraction, default=0.1, help="final LR / peak LR (0.1)")
    t.add_argument("--clip", type=nonneg_float, default=1.0, help="gradient-norm clip, 0 = off (1.0)")
    t.add_argument("--seed", type=guards.seed, default=0)
    t.add_argument("--threads", type=guards.threads, default=1, help="torch threads, at most the usable cores (1)")
    t.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    t.add_argument("--compile", action="store_true", help="torch.compile the model")
    t.add_argument("--eval-every", type=guards.steps, help="steps between evaluations (about 10 per run)")
    t.add_argument("--hparams", help="hparams.yaml from `scaleplan sweep export` (explicit flags win)")
    t.add_argument("--out", required=True, type=guards.folder, help="run folder (run.json, ckpt.pt while running)")
    t.add_argument("--inherit-from", metavar="RUN_DIR",
                   help="start from a finished run's weights (RUN_DIR/model.pt): embedding, the first "
                        "--inherit-layers blocks, final norm and readout (Inheritune, arXiv:2404.08634)")
    t.add_argument("--inherit-layers", type=guards.layers, metavar="K",
                   help="blocks to inherit with --inherit-from; the new model has K layers")
    t.add_argument("--json", action="store_true", help="print run.json (without curves) as JSON")
    t.set_defaults(func=cmd_train)


_TRAIN_FLAGS = {  # argparse dest -> TrainConfig field (None on the command line = not given)
    "heads": "n_heads", "head_dim": "head_dim", "param": "parameterization", "base_width": "base_width",
    "base_depth": "base_depth", "depth_scaling": "depth_scaling", "lr": "lr", "init_std": "init_std",
    "out_mult": "alpha_out", "in_mult": "alpha_in", "attn_mult": "attn_mult", "wd": "weight_decay", "wd_rule": "wd_rule",
    "tokens": "tokens", "steps": "steps", "warmup_frac": "warmup_frac", "eval_every": "eval_every",
}


def config_from_args(args):
    """TrainConfig from the flags; with --hparams the tuned values first, explicit flags winning."""
    from planner.hparams import HParams
    from proxy_train.config import TrainConfig
    from proxy_train.data import TokenData

    n_layers, inherit = _depth_and_inheritance(args)
    fields = dict(data=args.data, d_model=args.d_model, n_layers=n_layers, batch=args.batch,
                  seq_len=args.seq_len, schedule=args.schedule, cooldown_frac=args.cooldown_frac,
                  min_lr_frac=args.min_lr_frac, clip=args.clip, seed=args.seed, threads=args.threads,
                  device=args.device, compile=args.compile)
    fields.update({f: getattr(args, a) for a, f in _TRAIN_FLAGS.items() if getattr(args, a) is not None})
    extra = {"command": command_line(), **({"inherit": inherit} if inherit else {})}
    if not args.hparams:
        return TrainConfig(**fields, extra=extra).validate()
    data_vocab = TokenData(args.data).vocab_size
    hp = HParams.read(args.hparams)
    extra.update(hparams_file=str(args.hparams), hparams_source=hp.source or None)
    return TrainConfig.from_hparams(hp, data_vocab=data_vocab, **fields, extra=extra).validate()


def _depth_and_inheritance(args) -> tuple[int, dict | None]:
    """(n_layers, the ``inherit`` record or None): --inherit-from and --inherit-layers come
    together; the depth defaults to K and must equal it (proxy_train.inherit)."""
    from planner.errors import UserError
    from proxy_train.inherit import source_record

    if (args.inherit_from is None) != (args.inherit_layers is None):
        raise UserError("give --inherit-from RUN_DIR and --inherit-layers K together")
    if args.inherit_from is None:
        if args.n_layers is None:
            raise UserError("no depth given; pass --n-layers L")
        return args.n_layers, None
    inherit = source_record(args.inherit_from, args.inherit_layers)
    if args.n_layers is not None and args.n_layers != args.inherit_layers:
        raise UserError(f"--n-layers {args.n_layers} differs from --inherit-layers {args.inherit_layers}; "
                        "the inherited model has exactly K layers (omit --n-layers)")
    return args.inherit_layers, inherit


def _check_inheritance(cfg) -> None:
    """The inherited model's shape against the source's, before anything is written."""
    from proxy_train.data import TokenData
    from proxy_train.inherit import check_compatible

    inherit = cfg.extra.get("inherit")
    if inherit:
        shape = cfg.model_shape(TokenData(cfg.data).vocab_size).to_dict()
        check_compatible(inherit, shape, cfg.parameterization, cfg.n_layers)


def cmd_train(args) -> int:
    from proxy_train.train import check_run_folder, train

    cfg = config_from_args(args)
    _check_inheritance(cfg)
    check_run_folder(cfg, args.out)
    rec = train(cfg, args.out, keep_weights=True)
    brief = {k: v for k, v in rec.items() if k not in ("curve", "config")}
    line = (f"{args.out}: status {rec['status']}"
            + (f" ({rec['reason']})" if rec.get("reason") else "")
            + f", N={rec['total_params']:,} ({rec['non_embedding_params']:,} non-embedding), "
              f"D={rec['tokens']:,} tokens, C={rec['flops']:.3g} FLOPs, "
              f"train loss {rec['final_train_loss']:.4f}, val loss {rec['final_val_loss']:.4f} nats/token, "
              f"{rec['tokens_per_s'] or 0:,.0f} tokens/s")
    if rec.get("inherit"):
        line += f"\ninherited {rec['inherit']['layers']} of {rec['inherit']['source_layers']} layers from {rec['inherit']['from_run']}"
    if rec.get("attention_diagnostic"):
        from proxy_train.attention_diagnostic import summary_line
        line += "\n" + summary_line(rec["attention_diagnostic"])
    emit(args, brief, line)
    return 0
