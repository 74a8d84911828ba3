"""Megatron-LM export: ``launch.sh`` (torchrun, single or multi node), ``sbatch.sh`` (SLURM), and
``megatron_args.json`` (flag -> value), all from a Plan.

Semantics respected (shared/notes/megatron-and-planning.md):

* §1b: ``--lr-decay-iters`` counts from step 0 and *includes* warmup; the plan stores it in that
  unit. WSD anneals during the last ``--lr-wsd-decay-iters`` before ``--lr-decay-iters``.
* §1c: TP divides heads, kv groups and ffn; ``world % (TP*PP*CP) == 0``; ``GBS % (mbs*DP) == 0``;
  SP only when TP > 1; vocab padded to a multiple of ``make_vocab_size_divisible_by * TP``.
* μP (planner/export/megatron_mup.py models what Megatron derives, cited there): ``native`` (the
  default) passes ``--use-mup`` with the values that make Megatron's derived LR, init, multipliers
  and softmax scale equal the plan's (exact up to Megatron's depth-scaled output-projection init,
  its hidden eps/width_mult and the zero inits it lacks); ``translate`` uses flags every release
  has: ``--decoupled-lr`` reaches both the word embedding and the output layer
  (``is_embedding_or_output_parameter``; ``get_standard_config_overrides``), norms get ``--lr``
  and attention stays 1/sqrt(d_head), so it is refused when an update size or the attention
  scale is off by more than 2x unless allowed; the per-group ratios go into launch.sh's header
  and ``megatron_args.json``'s meta either way.
* Multi-phase plans (planner/plan/phases.py): one launch per phase, each continuing the way its
  mode says (continue / rewarm: ``--load`` the same folder with the optimizer state, step counter
  and consumed samples kept, the segment on Megatron's global counter; reset: an explicit finetune
  from the previous folder), with launch.sh guarding the order; the flags, their Megatron-LM
  sources and what is refused are in planner/export/megatron_phases.py.

Launch = plan: every plan field that changes the run reaches the flags (VPP, SP, sharding and the
overlap the time model assumes: ``megatron_flags.parallel_args``; the validation split and eval
cadence, checkpoint and log intervals, TensorBoard and loss checks from ``plan.operations``:
``megatron_flags.run_ops``), and launch.sh's header states the predicted final loss and the eval
cadence. Every argument list is run through :func:`planner.export.megatron_validate.
megatron_arg_problems` (Megatron-LM's own validation rules, cited there) for the planned world size
and refused when Megatron would reject it; it can also be checked against a dump of Megatron's
parser (shared/data/megatron/pretrain_gpt_flags.json) by ``megatron_flags.validate_args``.
"""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from planner.errors import UserError
from planner.export.architecture import (MEGATRON_Z_LOSS_NOTE, caveat_lines, megatron_architecture_args, z_loss,
                                        z_loss_warning)
from planner.export.common import (PLACEHOLDERS, data_value, edited_note, fmt, header_lines, json_text, one_line, q,
                                   write_export)
from planner.export.megatron_flags import (Shell, args_to_json, launch_env, operations_args, parallel_args,
                                           run_check_lines, run_checks_meta, run_ops, validate_args)
from planner.export.megatron_mup import MupCheck, compare, megatron_effective, native_mup_flags
from planner.export.megatron_phases import (CONTINUE_PLACEHOLDER, PhaseRun, continuation_lines, continued_run,
                                            data_path_values, guard_lines, phase_runs, phase_scheduler_args)
from planner.export.megatron_validate import MEGATRON_COMMIT, megatron_arg_problems
from planner.plan import Plan

#: Shell expressions (not quoted) used for placeholder-valued flags.
_SHELL_REFS = {
    "--data-path": '"${DATA_PATH[@]}"',
    "--tokenizer-model": '"${TOKENIZER_MODEL}"',
    "--save": '"${CHECKPOINT_DIR}"',
    "--load": '"${CHECKPOINT_DIR}"',
    "--data-cache-path": '"${CACHE_DIR}"',
}


MUP_MODES = ("translate", "native")
#: Megatron's activation-recompute flags per Layout.recompute.
RECOMPUTE_ARGS: dict[str, list[tuple[str, Any]]] = {
    "none": [],
    "selective": [("--recompute-activations", True), ("--recompute-granularity", "selective")],
    "full": [("--recompute-granularity", "full"), ("--recompute-method", "uniform"), ("--recompute-num-layers", 1)],
}


def build_args(plan: Plan, *, mup_mode: str = "native", phase: PhaseRun | None = None) -> list[tuple[str, Any]]:
    """Ordered (flag, value) pairs for pretrain_gpt.py. ``True`` = a bare switch.

    ``mup_mode`` (μP plans only; module docstring): ``native`` uses Megatron-LM's ``--use-mup``
    family (base LR and base init std; Megatron scales them itself); ``translate`` expresses μP
    with flags every release has (:func:`_mup_lr_init`). Floats derived from μP are written with
    full precision (:func:`_exact`).
    """
    if mup_mode not in MUP_MODES:
        raise UserError(f"unknown μP mode {mup_mode!r}; use translate or native")
    train_iters = phase.train_iters if phase else plan.training.train_iters
    tensorboard = Shell('"${CHECKPOINT_DIR}/tensorboard' + (f'/{phase.name}"' if phase else '"'))
    model = [(k, phase.global_batch if phase and k == "--global-batch-size" else v) for k, v in _model_args(plan)]
    return (parallel_args(plan) + model + _data_args(plan, phase, train_iters)
            + _optimizer_args(plan, mup_mode, phase) + operations_args(run_ops(plan, train_iters), tensorboard)
            + [("--bf16", True)] + _architecture_args(plan) + _native_mup_args(plan, mup_mode))


def _extra(plan: Plan) -> dict[str, Any]:
    """A published run's Megatron settings that are not planning decisions (empty for our plans)."""
    return plan.training.megatron_extra or {}


def _model_args(plan: Plan) -> list[tuple[str, Any]]:
    s, t = plan.shape, plan.training
    a: list[tuple[str, Any]] = [("--num-layers", s.n_layers), ("--hidden-size", s.d_model),
                                ("--ffn-hidden-size", s.d_ffn), ("--num-attention-heads", s.n_heads)]
    if s.head_dim * s.n_heads != s.d_model:
        a.append(("--kv-channels", s.head_dim))
    if s.n_kv_heads != s.n_heads:
        a += [("--group-query-attention", True), ("--num-query-groups", s.n_kv_heads)]
    return a + [("--seq-length", t.seq_len), ("--max-position-embeddings", max(t.seq_len, s.seq_len)),
                ("--micro-batch-size", plan.layout.micro_batch), ("--global-batch-size", t.global_batch)]


def _data_args(plan: Plan, phase: PhaseRun | None, train_iters: int) -> list[tuple[str, Any]]:
    """Steps, tokenizer, checkpoint folder and data (``None`` = a placeholder filled from the script's variables)."""
    extra = _extra(plan)
    ckpt = Shell(f'"${{CHECKPOINT_DIR}}/{phase.folder}"') if phase else None
    load = ckpt
    if phase and phase.continued:  # continual pretraining: launch.sh picks the checkpoint or this run's own
        ckpt, load = None, Shell('"${LOAD_DIR}"') if phase.continued == "kept" else None
    mixture = data_path_values(phase) if phase else None  # a phase's own mixture, else the placeholder
    return [("--train-iters", train_iters),
            ("--tokenizer-type", extra.get("tokenizer_type", "HuggingFaceTokenizer")), ("--tokenizer-model", None),
            ("--load", load), ("--save", ckpt), ("--data-path", mixture), ("--data-cache-path", None),
            ("--distributed-backend", "nccl")]


def _optimizer_args(plan: Plan, mup_mode: str, phase: PhaseRun | None) -> list[tuple[str, Any]]:
    """Init std, LR schedule (a phase's own when given), AdamW; μP per :func:`_mup_lr_init`."""
    t = plan.training
    lr, min_lr = (phase.lr, phase.min_lr) if phase else (t.lr, t.min_lr)
    mup = plan.is_mup
    head, decoupled = _mup_lr_init(plan, mup_mode, lr, min_lr) if mup else (
        [("--init-method-std", t.init_std), ("--lr", lr), ("--min-lr", min_lr)], [])
    a = list(head)
    style = phase.decay_style if phase else t.schedule
    if style == "wsd":
        a += [("--lr-decay-style", "WSD"), ("--lr-wsd-decay-style", t.wsd_decay_style or "linear"),
              ("--lr-wsd-decay-iters", t.wsd_decay_iters)]
    else:
        a.append(("--lr-decay-style", style))
    a.append(("--lr-decay-iters", phase.lr_decay_iters if phase else t.lr_decay_iters))
    a += decoupled
    wd = t.weight_decay
    if mup and mup_mode == "native":
        wd = dict(native_mup_flags(plan.hparams, plan.shape.head_dim))["--weight-decay"]
    a += [("--weight-decay", _exact(wd) if mup else wd), ("--clip-grad", t.clip_grad),
          ("--lr-warmup-iters", phase.warmup_iters if phase else t.warmup_iters),
          ("--optimizer", "adam"), ("--adam-beta1", t.betas[0]), ("--adam-beta2", t.betas[1]),
          ("--adam-eps", _exact(t.eps) if mup else t.eps)]
    return a + (phase_scheduler_args(phase) if phase else [])


def _exact(value: float) -> str:
    """A float as the shortest text that parses back to it (μP values must survive to 1e-6 and better)."""
    return repr(float(value))


def _mup_lr_init(plan: Plan, mup_mode: str, lr: float, min_lr: float) -> tuple[list, list]:
    """(init and LR flags, decoupled-LR flags) of a μP plan; ``lr``/``min_lr`` are the plan's hidden LRs.

    native: base LR and base init std; Megatron divides them itself (megatron_mup module docstring).
    translate: --lr the hidden LR (it also reaches the norms), hidden init std, the embedding init
    with alpha_in folded in, and one --decoupled-lr for embedding and output layer: the geometric
    mean of their multiplier-folded μP update sizes (lr*alpha_in and lr*alpha_out/m_d), which
    minimises the larger of the two mismatches.
    """
    hp, t = plan.hparams, plan.training
    scale = lr / t.lr  # a phase's LR relative to the plan's (1 outside phases)
    if mup_mode == "native":  # every value from megatron_mup.native_mup_flags (weight decay included)
        flags = dict(native_mup_flags(hp, plan.shape.head_dim, lr_scale=scale, min_lr_ratio=min_lr / lr))
        head = [(k, _exact(flags[k])) for k in ("--init-method-std", "--embedding-init-method-std", "--lr", "--min-lr")]
        return head, [(k, _exact(flags[k])) for k in ("--decoupled-lr", "--decoupled-min-lr") if k in flags]
    emb, out = hp.embedding, hp.readout
    decoupled = (emb.lr * emb.multiplier * out.lr * out.multiplier) ** 0.5 * scale
    min_ratio = t.decoupled_min_lr / t.decoupled_lr if t.decoupled_lr else min_lr / lr
    return ([("--init-method-std", _exact(hp.hidden.init_std)),
             ("--embedding-init-method-std", _exact(emb.init_std * emb.multiplier)),
             ("--lr", _exact(lr)), ("--min-lr", _exact(min_lr))],
            [("--decoupled-lr", _exact(decoupled)), ("--decoupled-min-lr", _exact(decoupled * min_ratio))])


def _architecture_args(plan: Plan) -> list[tuple[str, Any]]:
    """Architecture switches (LayerNorm, biases, partial rotary: architecture.py), fusions, recompute."""
    s, extra = plan.shape, _extra(plan)
    a = megatron_architecture_args(s, plan.layout.tp)  # tying, RoPE, biases, norm (planner/export/architecture.py)
    if extra.get("masked_softmax_fusion") is False:
        a.append(("--no-masked-softmax-fusion", True))
    a += [("--attention-dropout", 0.0), ("--hidden-dropout", 0.0)]
    if s.activation == "swiglu":
        a.append(("--swiglu", True))
    a += RECOMPUTE_ARGS[plan.layout.recompute]
    if extra.get("attention_softmax_in_fp32", True):
        a.append(("--attention-softmax-in-fp32", True))
    a.append(("--transformer-impl", extra.get("transformer_impl", "transformer_engine")))
    if extra.get("log_throughput", True):
        a.append(("--log-throughput", True))
    return a


def _native_mup_args(plan: Plan, mup_mode: str) -> list[tuple[str, Any]]:
    """Megatron-LM's --use-mup flags set so that what it derives equals μP (megatron_mup docstring).

    Output multiplier: Megatron keeps --mup-output-mult as given unless it is exactly 1.0 (then it
    uses 1/width_mult), so we pass alpha_out/m_d itself, nudged by one ulp when that is exactly 1.
    Attention: softmax_scale = sqrt(mup_base_head_dim) / kv_channels**power, so power 1 and base
    head dim attn_mult**2 give attn_mult/d_head.
    """
    if not (plan.is_mup and mup_mode == "native"):
        return []
    flags = dict(native_mup_flags(plan.hparams, plan.shape.head_dim))
    return [("--use-mup", True), ("--mup-base-hidden-size", flags["--mup-base-hidden-size"])] + [
        (k, _exact(flags[k])) for k in ("--mup-embedding-mult", "--mup-output-mult", "--mup-base-head-dim")] + [
        ("--mup-attn-scale-power", 1.0)]


def mup_check(plan: Plan, args: list[tuple[str, Any]], phase: PhaseRun | None = None) -> MupCheck | None:
    """What Megatron derives from ``args`` per group versus the plan's μP values (None unless μP); a
    phase with its own peak LR is compared with the μP values at that peak (every group's LR scaled
    alike, as its flags are: :func:`_mup_lr_init`)."""
    if not plan.is_mup:
        return None
    width = plan.hparams
    if phase is not None and phase.lr != plan.training.lr:
        width = width.with_lr_factor(phase.lr / plan.training.lr, width.horizon)
    return compare(megatron_effective(args), width)


# ---------------------------------------------------------------------------------- scripts
def _mup_comment(plan: Plan, mup_mode: str, check: MupCheck | None) -> list[str]:
    hp = plan.hparams
    if hp is None:
        return ["# Parameterization: standard (SP); no μP hyperparameters in this plan."]
    if not hp.is_mup:
        return ["# Parameterization: SP hparams from a proxy at another width were used as is:",
                "# SP has no transfer guarantee across width (the optimal LR drifts roughly like 1/width)."]
    if check is None:
        return [f"# μP hparams at width {hp.d_model} are reported in plan.yaml but not applied (the plan's LR "
                "comes from a preset or was given)."]
    lines = [f"# μP at width {hp.d_model} (base width {hp.base_width}, m_d = {hp.m_d:.6g})."]
    if mup_mode == "native":
        lines += ["# Megatron-LM's native μP (--use-mup; core_v0.17.0 and later): --lr and --init-method-std are",
                  "# the base values, Megatron divides them by width_mult for hidden matrices; --mup-output-mult",
                  "# is alpha_out/m_d and --mup-base-head-dim attn_mult^2 so that the logit multiplier and the",
                  "# softmax scale attn_mult/d_head equal the proxy's."]
    else:
        lines += ["# Translated into flags every release has (no --use-mup): --lr is the hidden LR (norms get it",
                  "# too), --decoupled-lr serves embedding AND output layer, attention is 1/sqrt(d_head).",
                  "# APPROXIMATE (--allow-approximate-mup): " + (", ".join(check.off_by_more_than(2.0)) or
                                                                  "no update size off by more than 2x") + ";",
                  "# rerun `scaleplan export --megatron-mup native` for exact μP on Megatron-LM core_v0.17.0+."]
    return lines + ["# " + line for line in check.lines()]


def launch_script(plan: Plan, args: list[tuple[str, Any]], *, command: str | None = None,
                  mup_mode: str = "native", title: str = "Megatron-LM launch", phase: PhaseRun | None = None) -> str:
    place = plan.placement
    gpn, nnodes = place.gpus_per_node, place.n_nodes
    L = ["#!/usr/bin/env bash"] + header_lines(plan, title, command) + [
        f"# Plan: {place.n_gpus} GPUs = {nnodes} node(s) x {gpn}. On one node: bash launch.sh. On several: run it on",
        "# every node with NODE_RANK, MASTER_ADDR set (sbatch.sh does this under SLURM).",
        "# TORCHRUN may be overridden (e.g. TORCHRUN=echo for a dry run).",
        "set -euo pipefail",
        "",
        "# ---- fill these in ----------------------------------------------------------------",
    ]
    for key, (var, todo) in PLACEHOLDERS.items():
        val = data_value(plan, key)
        L.append(f"# {todo}")
        if key == "data_path":
            items = val if isinstance(val, list) else [val]  # a string is one path (it may hold spaces)
            L.append(f"DATA_PATH=({' '.join(shlex.quote(fmt(x)) for x in items)})")
        else:
            L.append(f"{var}={q(val)}")
    L += [
        "MEGATRON_DIR=\"${MEGATRON_DIR:-/path/to/Megatron-LM}\"  # TODO: your Megatron-LM checkout",
        "",
        "# ---- cluster ------------------------------------------------------------------------",
        f"GPUS_PER_NODE=\"${{GPUS_PER_NODE:-{gpn}}}\"",
        f"NNODES=\"${{NNODES:-{nnodes}}}\"",
        "NODE_RANK=\"${NODE_RANK:-${SLURM_NODEID:-0}}\"",
        "MASTER_ADDR=\"${MASTER_ADDR:-localhost}\"",
        "MASTER_PORT=\"${MASTER_PORT:-29500}\"",
        _max_connections_line(plan),
        "",
    ]
    L += run_check_lines(plan, run_ops(plan, int(dict(args)["--train-iters"])))
    z_warn = z_loss_warning(plan, "Megatron-LM", MEGATRON_Z_LOSS_NOTE)
    L += [f"# {z_warn}"] if z_warn else []
    L += caveat_lines(plan, "# ")
    L += _mup_comment(plan, mup_mode, mup_check(plan, args, phase))
    L += ([""] + (continuation_lines(phase) if phase.continued else guard_lines(phase))) if phase else []
    L += ["", "ARGS=("]
    for flag, value in args:
        if value is True:
            L.append(f"  {flag}")
        elif isinstance(value, Shell):
            L.append(f"  {flag} {value}")
        elif value is None:
            L.append(f"  {flag} {_SHELL_REFS[flag]}")
        elif isinstance(value, list):
            L.append(f"  {flag} {' '.join(q(v) for v in value)}")
        else:
            L.append(f"  {flag} {q(value)}")
    L += [")", "",
          "exec ${TORCHRUN:-torchrun} --nproc_per_node \"$GPUS_PER_NODE\" --nnodes \"$NNODES\" "
          "--node_rank \"$NODE_RANK\" --master_addr \"$MASTER_ADDR\" --master_port \"$MASTER_PORT\" "
          "\"$MEGATRON_DIR/pretrain_gpt.py\" \"${ARGS[@]}\"", ""]
    return "\n".join(L)


def _max_connections_line(plan: Plan) -> str:
    if launch_env(plan)["CUDA_DEVICE_MAX_CONNECTIONS"] is None:
        return "unset CUDA_DEVICE_MAX_CONNECTIONS  # Megatron's torch FSDP2 refuses the value 1 (validate_args)"
    return "export CUDA_DEVICE_MAX_CONNECTIONS=1  # required by Megatron for TP/CP before Blackwell (validate_args)"


def sbatch_script(plan: Plan, launch_name: str = "launch.sh", *, command: str | None = None) -> str:
    gpn, nnodes = plan.placement.gpus_per_node, plan.placement.n_nodes
    job = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in (plan.preset or "scaleplan"))[:40]
    days = plan.time_cost.estimate.days if plan.time_cost else None
    L = ["#!/usr/bin/env bash"] + header_lines(plan, "SLURM wrapper for the Megatron-LM launch", command) + [
        f"#SBATCH --job-name={job}",
        f"#SBATCH --nodes={nnodes}",
        "#SBATCH --ntasks-per-node=1",
        f"#SBATCH --gpus-per-node={gpn}",
        "#SBATCH --exclusive",
        "# TODO: add --partition/--account/--time for your cluster"
        + (f" (estimate: {days:.1f} days at the plan's MFU)" if days else ""),
        "set -euo pipefail",
        "SCRIPT_DIR=\"$(cd \"$(dirname \"${BASH_SOURCE[0]}\")\" && pwd)\"",
        "export MASTER_ADDR=\"$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head -n 1)\"",
        "export MASTER_PORT=\"${MASTER_PORT:-29500}\"",
        f"export NNODES={nnodes} GPUS_PER_NODE={gpn}",
        f"srun --export=ALL bash -c 'NODE_RANK=$SLURM_NODEID exec bash \"$0\"' \"$SCRIPT_DIR/{launch_name}\"",
        "",
    ]
    return "\n".join(L)


#: Translate mode refuses when an update size or the attention scale is off by more than this factor.
APPROXIMATE_LIMIT = 2.0


def _refuse_decay_mismatch(check: MupCheck | None) -> None:
    """Either mode: a group whose per-step weight decay is off the proxy's rule by more than the limit."""
    off = check.decay_off_by_more_than(APPROXIMATE_LIMIT) if check else []
    if off:
        raise UserError(
            f"Megatron cannot apply this plan's μP weight decay within {APPROXIMATE_LIMIT:g}x per step (trainer / "
            "proxy rule: " + ", ".join(off) + "); one --weight-decay reaches every matrix at its own LR. Export "
            "with --megatron-mup native, or pass --allow-approximate-mup to write these ratios into launch.sh")


def _refuse_approximate(check: MupCheck | None) -> None:
    off = check.off_by_more_than(APPROXIMATE_LIMIT) if check else []
    if off:
        raise UserError(
            f"Megatron translate mode cannot express this plan's μP within {APPROXIMATE_LIMIT:g}x (trainer / μP: "
            + ", ".join(off) + "): without --use-mup one --decoupled-lr serves embedding and output layer, norms "
            "get the hidden --lr and attention is 1/sqrt(d_head); export with --megatron-mup native (Megatron-LM "
            "core_v0.17.0 or later: exact), or pass --allow-approximate-mup to write these ratios into launch.sh")


def _refuse_invalid(plan: Plan, args: list[tuple[str, Any]]) -> None:
    """UserError naming every Megatron-LM validation rule ``args`` break on the plan's GPU count."""
    probs = megatron_arg_problems(args, plan.placement.n_gpus, env=launch_env(plan))
    if probs:
        raise UserError(f"Megatron-LM would reject these arguments on {plan.placement.n_gpus} GPUs: "
                        + "; ".join(probs) + "; re-plan with values that satisfy these rules")


def render_megatron(plan: Plan, *, command: str | None = None, mup_mode: str = "native",
                    flags_json_path: str | Path | None = None, allow_approximate_mup: bool = False,
                    allow_approximate_schedule: bool = False) -> dict[str, str]:
    """launch.sh, sbatch.sh and megatron_args.json (one launch/sbatch pair per phase when the plan has phases).

    A μP plan in ``translate`` mode is refused when :meth:`MupCheck.off_by_more_than` finds a group
    off by more than ``APPROXIMATE_LIMIT``, unless ``allow_approximate_mup``; a phase whose schedule
    Megatron cannot express exactly (megatron_phases.py) unless ``allow_approximate_schedule``.
    """
    errs = plan.validate_layout()
    if errs:
        raise UserError("the plan's layout breaks Megatron's rules: " + "; ".join(errs)
                        + "; re-plan with other --tp/--pp/--gpus")
    files: dict[str, str] = {}
    all_args = {}
    check = None
    runs = phase_runs(plan, mup_mode=mup_mode, allow_approximate_schedule=allow_approximate_schedule)
    continued = continued_run(plan, mup_mode=mup_mode, allow_approximate_schedule=allow_approximate_schedule)
    for phase in runs or [continued]:
        args = build_args(plan, mup_mode=mup_mode, phase=phase)
        if flags_json_path is not None:
            probs = validate_args(args, flags_json_path)
            if probs:
                raise UserError("exported Megatron arguments are invalid: " + "; ".join(probs))
        _refuse_invalid(plan, args)
        check = mup_check(plan, args, phase)
        if not allow_approximate_mup:
            _refuse_decay_mismatch(check)
            if mup_mode == "translate":
                _refuse_approximate(check)
        named = phase is not None and not phase.continued  # a continued plan is one launch: launch.sh
        suffix = f"_{phase.name}" if named else ""
        files[f"launch{suffix}.sh"] = launch_script(plan, args, command=command, mup_mode=mup_mode, phase=phase,
                                                   title=f"Megatron-LM launch{(' ' + phase.name) if phase else ''}")
        files[f"sbatch{suffix}.sh"] = sbatch_script(plan, f"launch{suffix}.sh", command=command)
        all_args[phase.name if named else "main"] = args_to_json(args, plan)
        if phase and phase.data:  # a phase's own mixture: the weight/prefix list as given
            all_args[phase.name]["--data-path"] = data_path_values(phase)
    meta = {"scaleplan_plan_hash": plan.plan_hash, "command": one_line(command or plan.meta.get("command", "")),
            "mup_mode": mup_mode if plan.is_mup else None,  # None: an SP plan has no μP to express
            "run_checks": run_checks_meta(plan),
            "validated_against": f"NVIDIA/Megatron-LM {MEGATRON_COMMIT} (planner/export/megatron_validate.py)"}
    if check is not None:
        meta["mup_check"] = check.to_dict()
    if runs:  # how each phase continues, and any approximation allow_approximate_schedule let through
        meta["phase_notes"] = {r.name: r.note for r in runs}
    if continued:  # the first launch's checkpoint (launch.sh resumes this run's own after a failure)
        _continued_json(all_args["main"], continued)
        meta["continue_from"] = {**plan.training.continue_from, "note": continued.note}
    if z_loss(plan):
        meta["z_loss"] = {"coefficient": z_loss(plan), "applied": False, "why": MEGATRON_Z_LOSS_NOTE}
    if edited_note(plan):
        meta["warning"] = edited_note(plan)
    body = {"args": all_args["main"]} if "main" in all_args else {"phases": all_args}
    files["megatron_args.json"] = json_text({"meta": meta, **body})
    return files


def _continued_json(args: dict[str, Any], run: PhaseRun) -> None:
    """megatron_args.json of a continued plan: the checkpoint path the first launch loads."""
    path = run.checkpoint or CONTINUE_PLACEHOLDER
    if run.continued == "kept":
        args["--load"] = path
    else:
        args["--pretrained-checkpoint"] = path


def export_megatron(plan: Plan, out_dir: str | Path, *, command: str | None = None, mup_mode: str = "native",
                    flags_json_path: str | Path | None = None, allow_approximate_mup: bool = False,
                    allow_approximate_schedule: bool = False) -> dict[str, Any]:
    """Write :func:`render_megatron`'s files into ``out_dir``."""
    files = render_megatron(plan, command=command, mup_mode=mup_mode, flags_json_path=flags_json_path,
                            allow_approximate_mup=allow_approximate_mup,
                            allow_approximate_schedule=allow_approximate_schedule)
    return write_export("megatron", plan, out_dir, files)
