"""`scaleplan plan`: a budget (or a published recipe) -> plan.yaml."""
from __future__ import annotations

import argparse

from planner.provenance import command_line
from scaleplan.commands import emit, nonneg_float, output_file, positive_float, positive_int
from scaleplan.commands.guards import bounded_float, bounded_int
from planner.limits import MAX_LR, MAX_PRICE, MAX_VOCAB, MIN_LR, MIN_PRICE
from planner.errors import UserError


def register(sub) -> None:
    p = sub.add_parser(
        "plan", help="budget -> shape, tokens, hparams, layout, memory, time, cost (plan.yaml)",
        description="Turn a compute budget (or a published recipe) into a launchable plan. Budget: --flops C, "
                    "or --gpu-hours H --gpu NAME, or --gpus N --days D --gpu NAME (FLOPs = GPU-hours x peak x MFU). "
                    "Tokens are C / Megatron FLOPs per token of the chosen shape.")
    b = p.add_argument_group("budget (one of)")
    b.add_argument("--flops", type=positive_float, help="training compute in FLOPs (e.g. 1e22)")
    b.add_argument("--gpu-hours", type=positive_float, help="GPU-hours on --gpu at --mfu")
    b.add_argument("--days", type=positive_float, help="wall-clock days on --gpus GPUs")
    b.add_argument("--target-loss", type=positive_float, help="plan the cheapest run reaching this loss (nats)")
    b.add_argument("--preset", help="pin a published model + recipe (see --list-presets)")
    b.add_argument("--list-presets", action="store_true", help="list the named recipes and exit")
    p.add_argument("--tokens", type=positive_float, help="training tokens (with --preset; default: published)")
    p.add_argument("--gpu", help="GPU type (default: the preset's, else h100 = H100 SXM)")
    p.add_argument("--gpus", type=positive_int, help="number of GPUs (default: preset's, or ~30 days)")
    p.add_argument("--law", default="besiroglu2024", help="scaling law preset or fit.json (default besiroglu2024)")
    p.add_argument("--loss-tolerance", type=nonneg_float, default=0.0025,
                   help="near-optimal band: sizes within this relative loss of L* are weighed against the hardware "
                        "(default 0.0025 = 0.25%%; 0: the shape nearest N*)")
    p.add_argument("--serve-on", metavar="GPU[,DTYPE][,kv=DTYPE]",
                   help="cap N so weights + KV cache (context = --seq-len, batch 1) fit this GPU, e.g. a100-80gb,bf16")
    p.add_argument("--hparams", help="hparams.yaml from `scaleplan sweep export` (μP transfer)")
    p.add_argument("--force-hparams", action="store_true",
                   help="apply --hparams even when they fail the quality gate (trials, search edges, transfer check)")
    p.add_argument("--no-horizon-correction", dest="horizon_correction", action="store_false",
                   help="keep the hparams' LR as tuned: no (T_target/T_proxy)^b training-horizon factor "
                        "(planner/horizon.py, studies/horizon)")
    p.add_argument("--inference-tokens", type=nonneg_float, default=0.0, help="tokens to serve (Sardana et al.)")
    p.add_argument("--unique-tokens", type=positive_float, help="unique data available (Muennighoff et al.)")
    p.add_argument("--seq-len", type=positive_int, help="sequence length (default 4096 or the preset's)")
    p.add_argument("--vocab", type=bounded_int(1, MAX_VOCAB, why="the largest published BPE vocab is 262,144"),
                   help="vocabulary size (default 32000 or the preset's)")
    p.add_argument("--tp", type=positive_int, help="pin tensor parallelism")
    p.add_argument("--pp", type=positive_int, help="pin pipeline parallelism")
    p.add_argument("--micro-batch", type=positive_int, help="pin the micro-batch")
    p.add_argument("--global-batch", type=positive_int, help="global batch in sequences (default: DeepSeek B_opt)")
    p.add_argument("--sharding", choices=["dist-opt", "ddp", "fsdp", "fsdp-hybrid"], help="optimizer-state sharding")
    p.add_argument("--recompute", choices=["none", "selective", "full"], help="activation recompute")
    p.add_argument("--memory-margin", type=nonneg_float,
                   help="fraction of GPU memory kept free for fragmentation, NCCL and spikes (default 0.10)")
    p.add_argument("--mfu", type=positive_float, help="model FLOPs utilisation (default: the GPU's prior)")
    p.add_argument("--price", type=bounded_float(MIN_PRICE, MAX_PRICE, lo_open=False, what="US$/GPU-hour"),
                   help="US$ per GPU-hour (default: a placeholder)")
    r = p.add_argument_group("checkpoints and failures (defaults and sources: planner/resilience.py)")
    r.add_argument("--fs-bandwidth", type=positive_float, metavar="GB/s", help="checkpoint write bandwidth, GB/s")
    r.add_argument("--node-mtbf-hours", type=positive_float, help="mean hours between failures of one node")
    r.add_argument("--keep-checkpoints", type=positive_int, help="checkpoints kept on disk")
    r.add_argument("--disk", type=positive_float, metavar="TB", help="checkpoint disk in TB; warned when too small")
    p.add_argument("--schedule", choices=["cosine", "wsd"], help="LR schedule (default cosine)")
    p.add_argument("--lr", type=bounded_float(MIN_LR, MAX_LR, lo_open=False, why="published peak LRs are 1e-4..1e-2"),
                   help="override the peak LR")
    p.add_argument("--phases", metavar="FILE",
                   help="multi-phase schedule, YAML/JSON: a list (or {phases: [...]}) of phases with tokens or "
                        "train_iters, global_batch, mode continue|rewarm|reset, lr, min_lr, warmup_iters, "
                        "decay_iters, decay_style, data [{prefix, weight, unique_tokens}]; they must add up to the plan's tokens "
                        "(with --preset, phases that all give a length define them; the last may give none and "
                        "take the rest) (planner/plan/phases.py)")
    p.add_argument("--mixture", metavar="FILE",
                   help="data mixture, YAML/JSON: a list (or {sources: [...]}) of {prefix, weight, unique_tokens}: "
                        "epochs per source, a warning past ~4 epochs and the data-constrained law's repeated-vs-fresh "
                        "loss in the plan's data_repetition section; phases without data use it "
                        "(planner/plan/data_mixture.py)")
    c = p.add_argument_group("continual pretraining: start from a checkpoint; --tokens are the tokens added "
                             "(planner/plan/continuation.py)")
    c.add_argument("--continue-from-tokens", type=positive_float, metavar="T",
                   help="tokens the checkpoint was trained on (the law predicts the loss at T + --tokens)")
    c.add_argument("--continue-from-iteration", type=positive_int, metavar="I",
                   help="the checkpoint's iteration on the trainer's step counter")
    c.add_argument("--continue-from-batch", type=positive_int, metavar="G",
                   help="global batch (sequences) the checkpoint ran at (default: the plan's)")
    c.add_argument("--continue-from-checkpoint", metavar="PATH", help="the checkpoint folder (Megatron --load)")
    c.add_argument("--fresh-optimizer", action="store_true",
                   help="load the weights only: new Adam moments, step counter and data position (Megatron "
                        "--pretrained-checkpoint, finetune semantics); default: keep them")
    p.add_argument("--data-path", help="Megatron data prefix written into exports")
    p.add_argument("--tokenizer", help="tokenizer model/folder written into exports")
    p.add_argument("--out", type=output_file, help="write the plan to this YAML file")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.set_defaults(func=_plan)


def _plan(args: argparse.Namespace) -> int:
    from planner.plan import Budget, PlanRequest, make_plan
    from planner.recipes import list_recipes

    if args.list_presets:
        rows = list_recipes()
        width = max(len(r["name"]) for r in rows)
        human = "\n".join(f"{r['name']:<{width}} {r['tokens']:.3g} tokens, batch {r['global_batch']} x {r['seq_len']}, "
                          f"lr {r['lr']:g} -> {r['min_lr']:g}"
                          + (f", {len(r['phases'])} phases" if r.get("phases") else "")
                          + f"  (source: {r['source']})" for r in rows)
        emit(args, rows, human)
        return 0
    budget = Budget.from_options(flops=args.flops, gpu_hours=args.gpu_hours, days=args.days, gpus=args.gpus,
                                 target_loss=args.target_loss, preset=args.preset, gpu=args.gpu, mfu=args.mfu)
    if args.tokens is not None and args.preset is None:
        raise UserError("--tokens only applies with --preset; for a budget use --flops")
    data = {}
    if args.data_path:
        data["data_path"] = args.data_path
    if args.tokenizer:
        data["tokenizer_model"] = args.tokenizer
    phases = _read_phases(args.phases) if args.phases else None
    if phases and args.preset and args.tokens is None:  # a preset's phases may define its tokens
        args.tokens = _phases_tokens(phases, args)
    plan = make_plan(PlanRequest(
        budget=budget, preset=args.preset, target_loss=args.target_loss,
        tokens=int(args.tokens) if args.tokens else None, law=args.law, inference_tokens=args.inference_tokens,
        unique_tokens=args.unique_tokens, seq_len=args.seq_len, vocab=args.vocab, hparams=args.hparams,
        global_batch=args.global_batch, schedule=args.schedule, lr=args.lr, gpu=args.gpu, n_gpus=args.gpus,
        tp=args.tp, pp=args.pp, micro_batch=args.micro_batch, recompute=args.recompute, sharding=args.sharding,
        mfu=args.mfu, price_per_gpu_hour=args.price, data=data, command=command_line(),
        force_hparams=args.force_hparams, loss_tolerance=args.loss_tolerance, memory_margin=args.memory_margin, serve_on=args.serve_on,
        fs_bandwidth=args.fs_bandwidth * 1e9 if args.fs_bandwidth else None, node_mtbf_hours=args.node_mtbf_hours,
        keep_checkpoints=args.keep_checkpoints, disk_bytes=args.disk * 1e12 if args.disk else None,
        horizon_correction=args.horizon_correction, phases=phases, continue_from=_continue_from(args),
        data_sources=_read_mixture(args.mixture) if args.mixture else None))
    _check_phases(plan)
    if args.out:
        plan.write(args.out)
    human = plan.summary() + (f"\n  written to {args.out}" if args.out else "")
    emit(args, plan.to_dict(), human)
    return 0


def _continue_from(args: argparse.Namespace) -> dict | None:
    """The --continue-from-* options as a continue_from mapping (None when none is given)."""
    given = [args.continue_from_tokens, args.continue_from_iteration, args.continue_from_batch,
             args.continue_from_checkpoint, args.fresh_optimizer or None]
    if all(v is None for v in given):
        return None
    if args.continue_from_tokens is None or args.continue_from_iteration is None:
        raise UserError("continuing from a checkpoint needs both --continue-from-tokens (tokens it has seen) and "
                        "--continue-from-iteration (its step); see `scaleplan plan --help`")
    return {"tokens_seen": int(args.continue_from_tokens), "iteration": args.continue_from_iteration,
            "global_batch": args.continue_from_batch, "optimizer": "fresh" if args.fresh_optimizer else "kept",
            "checkpoint": args.continue_from_checkpoint}


def _read_phases(path: str) -> list:
    """The phases in ``path`` (YAML or JSON, read by the bounded loader): a list or {phases: [...]}."""
    from planner.io import read_yaml
    from planner.plan.sections import check_phases

    data = read_yaml(path, "phases file")
    if isinstance(data, dict) and set(data) == {"phases"}:
        data = data["phases"]
    if not isinstance(data, list) or not data:
        raise UserError(f"phases file {path} must hold a non-empty list of phases (or {{phases: [...]}}); "
                        "see `scaleplan plan --help`")
    return check_phases(data)


def _read_mixture(path: str) -> list:
    """The mixture in ``path`` (YAML or JSON, read by the bounded loader), checked (data_mixture.py)."""
    from planner.io import read_yaml
    from planner.plan.data_mixture import read_mixture

    return read_mixture(read_yaml(path, "mixture file"), f"mixture file {path}")


def _phases_tokens(phases: list, args: argparse.Namespace) -> int | None:
    """The tokens the phases add up to when every phase has a length (batch and sequence: the options,
    else the preset's); None when one leaves it out (it then takes the rest of the preset's tokens)."""
    from planner.plan.presets import preset_request

    if any(p.get("tokens") is None and p.get("train_iters") is None for p in phases):
        return None
    recipe = preset_request(args.preset).recipe
    seq = args.seq_len or recipe.seq_len
    return sum(int(p["tokens"]) if p.get("tokens") is not None else
               int(p["train_iters"]) * int(p.get("global_batch") or args.global_batch or recipe.global_batch) * seq
               for p in phases)


def _check_phases(plan) -> None:
    """Phase lengths, modes and LR segments against the plan (UserError before anything is written)."""
    from planner.plan.phases import resolve_plan_phases

    resolve_plan_phases(plan)
