"""Megatron-LM export: ``launch.sh`` (torchrun, single or multi node), ``sbatch.sh`` (SLURM), and
``megatron_args.json`` (flag -> value), all from a Plan.

Semantics respected (shared/notes/megatron-and-planning.md):

* §1b: ``--lr-decay-iters`` counts from step 0 and *includes* warmup; the plan stores it in that
  unit. WSD anneals during the last ``--lr-wsd-decay-iters`` before ``--lr-decay-iters``.
* §1c: TP divides heads, kv groups and ffn; ``world % (TP*PP*CP) == 0``; ``GBS % (mbs*DP) == 0``;
  SP only when TP > 1; vocab padded to a multiple of ``make_vocab_size_divisible_by * TP``.
* ``--decoupled-lr`` applies to parameters tagged ``is_embedding_or_output_parameter`` (the word
  embedding and the output layer; Megatron-LM ``megatron/core/models/gpt/gpt_model.py`` and
  ``get_standard_config_overrides`` in the optimizer config), so it can carry μP's embedding and
  readout LR while ``--lr`` carries the hidden-matrix LR.
* Multi-phase schedules: Megatron's scheduler counts steps from 0 of the whole run, even with
  ``--override-opt_param-scheduler`` (it only swaps hyperparameters; ``load_state_dict`` then
  steps to the saved ``num_steps``), so a re-warmup needs a fresh step counter. Phase k saves to
  and resumes from ``$CHECKPOINT_DIR/phase<k>``; phases after the first add
  ``--pretrained-checkpoint $CHECKPOINT_DIR/phase<k-1>``: while phase k has no checkpoint yet,
  Megatron loads the previous phase's weights with ``finetune`` semantics (iteration 0, optimizer
  state and scheduler not loaded; ``checkpointing.py::load_checkpoint``), so the phase's own warmup
  and linear decay run from its step 0; once phase k has saved, a relaunch resumes it normally.

Every flag is checked against a dump of Megatron's own parser (shared/data/megatron/
pretrain_gpt_flags.json) by :func:`validate_args`.
"""
from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path
from typing import Any

from planner.errors import UserError
from planner.io import read_json
from planner.export.common import (PLACEHOLDERS, data_value, fmt, header_lines, one_line, q, write_files)  # noqa: F401
from planner.plan import Plan

#: Shell expressions (not quoted) used for placeholder-valued flags.
_SHELL_REFS = {
    "--data-path": '"${DATA_PATH[@]}"',
    "--tokenizer-model": '"${TOKENIZER_MODEL}"',
    "--save": '"${CHECKPOINT_DIR}"',
    "--load": '"${CHECKPOINT_DIR}"',
    "--data-cache-path": '"${CACHE_DIR}"',
}


class Shell(str):
    """A shell expression written unquoted into the script (only ever built from our own constants)."""


def _recompute_args(kind: str | None) -> list[tuple[str, Any]]:
    if kind == "selective":
        return [("--recompute-activations", True), ("--recompute-granularity", "selective")]
    if kind == "full":
        return [("--recompute-granularity", "full"), ("--recompute-method", "uniform"), ("--recompute-num-layers", 1)]
    return []


def build_args(plan: Plan, *, mup_mode: str = "translate", phase: dict[str, Any] | None = None
               ) -> list[tuple[str, Any]]:
    """Ordered (flag, value) pairs for pretrain_gpt.py. ``True`` = a bare switch.

    ``mup_mode``: ``translate`` expresses μP with flags every release has (--lr = hidden LR,
    --decoupled-lr = embedding/readout LR, hidden init std); ``native`` uses Megatron-LM main's
    ``--use-mup`` family instead (base LR and base init std; Megatron scales them itself).
    """
    if mup_mode not in ("translate", "native"):
        raise UserError(f"unknown μP mode {mup_mode!r}; use translate or native")
    s, t, lay = plan.model_shape, plan.training, plan.layout
    extra = t.get("megatron_extra") or {}
    tp, pp, cp = int(lay["tp"]), int(lay["pp"]), int(lay.get("cp", 1))
    a: list[tuple[str, Any]] = [
        ("--tensor-model-parallel-size", tp),
        ("--pipeline-model-parallel-size", pp),
        ("--context-parallel-size", cp),
    ]
    if tp > 1:
        a.append(("--sequence-parallel", True))
    if lay.get("fsdp"):
        # torch FSDP2 in Megatron: no PP, no distributed optimizer, no grad-accumulation fusion,
        # untied embeddings, torch_dist checkpoints (notes §1c rule 17). It shards over all of DP:
        # FSDP hybrid shard (shard in a node, replicate across) has no Megatron flag; see the script.
        if pp > 1:
            raise UserError("Megatron's torch FSDP2 (--use-torch-fsdp2) rules out PP > 1; re-plan with "
                            "--sharding dist-opt or --pp 1")
        a += [("--use-torch-fsdp2", True), ("--no-gradient-accumulation-fusion", True),
              ("--ckpt-format", "torch_dist")]
    elif lay.get("distributed_optimizer", True):
        a.append(("--use-distributed-optimizer", True))
    a += [
        ("--num-layers", s.n_layers), ("--hidden-size", s.d_model), ("--ffn-hidden-size", s.d_ffn),
        ("--num-attention-heads", s.n_heads),
    ]
    if s.head_dim * s.n_heads != s.d_model:
        a.append(("--kv-channels", s.head_dim))
    if s.n_kv_heads != s.n_heads:
        a += [("--group-query-attention", True), ("--num-query-groups", s.n_kv_heads)]
    a += [("--seq-length", t["seq_len"]), ("--max-position-embeddings", max(t["seq_len"], s.seq_len))]
    a += [("--micro-batch-size", lay["micro_batch"]), ("--global-batch-size", t["global_batch"])]

    ph = phase or {}
    train_iters = ph.get("train_iters", t["train_iters"])
    a.append(("--train-iters", train_iters))
    a += [("--tokenizer-type", extra.get("tokenizer_type", "HuggingFaceTokenizer")),
          ("--tokenizer-model", None),
          ("--load", Shell(f'"${{CHECKPOINT_DIR}}/{ph["name"]}"') if ph.get("name") else None),
          ("--save", Shell(f'"${{CHECKPOINT_DIR}}/{ph["name"]}"') if ph.get("name") else None),
          ("--save-interval", extra.get("save_interval", 1000)),
          ("--data-path", None), ("--split", extra.get("split", "99,1,0")), ("--data-cache-path", None),
          ("--distributed-backend", "nccl")]

    hp = plan.hparams or {}
    mup = hp.get("parameterization") == "mup" and t.get("decoupled_lr") is not None
    lr, min_lr = ph.get("lr", t["lr"]), ph.get("min_lr", t["min_lr"])
    init_std = t["init_std"]
    if mup and mup_mode == "native":
        base = hp["groups"]["embedding"]
        lr, init_std = base["lr"], base["init_std"]
        min_lr = lr * (t["min_lr"] / t["lr"])
    a.append(("--init-method-std", init_std))
    if mup and mup_mode == "translate":
        a.append(("--embedding-init-method-std", t["embedding_init_std"]))
    a += [("--lr", lr), ("--min-lr", min_lr)]
    style = ph.get("decay_style", t["schedule"])
    if style == "wsd":
        a += [("--lr-decay-style", "WSD"), ("--lr-wsd-decay-style", t.get("wsd_decay_style", "linear")),
              ("--lr-wsd-decay-iters", t["wsd_decay_iters"])]
    else:
        a.append(("--lr-decay-style", style))
    a.append(("--lr-decay-iters", ph.get("lr_decay_iters", t["lr_decay_iters"])))
    if mup and mup_mode == "translate":
        a += [("--decoupled-lr", t["decoupled_lr"]), ("--decoupled-min-lr", t["decoupled_min_lr"])]
    a += [("--weight-decay", t["weight_decay"]), ("--clip-grad", t["clip_grad"]),
          ("--lr-warmup-iters", ph.get("warmup_iters", t["warmup_iters"])),
          ("--optimizer", "adam"), ("--adam-beta1", t["betas"][0]), ("--adam-beta2", t["betas"][1]),
          ("--adam-eps", t["eps"])]
    if ph.get("previous"):
        a.append(("--pretrained-checkpoint", Shell('"${CHECKPOINT_DIR}/' + ph["previous"] + '"')))
    a += [("--log-interval", extra.get("log_interval", 10)), ("--eval-interval", train_iters),
          ("--eval-iters", extra.get("eval_iters", 0)), ("--bf16", True)]
    if not s.tied:
        a.append(("--untie-embeddings-and-output-weights", True))
    a += [("--position-embedding-type", "rope")]
    if s.rope_theta != 10000.0:
        a.append(("--rotary-base", int(s.rope_theta) if s.rope_theta == int(s.rope_theta) else s.rope_theta))
    a += [("--disable-bias-linear", True),
          ("--normalization", "RMSNorm" if s.norm == "rmsnorm" else "LayerNorm"),
          ("--norm-epsilon", s.norm_eps),
          ("--make-vocab-size-divisible-by", s.pad_vocab_to or 128)]
    if extra.get("masked_softmax_fusion") is False:
        a.append(("--no-masked-softmax-fusion", True))
    a += [("--attention-dropout", 0.0), ("--hidden-dropout", 0.0)]
    if s.activation == "swiglu":
        a.append(("--swiglu", True))
    a += _recompute_args(lay.get("recompute"))
    if extra.get("attention_softmax_in_fp32", True):
        a.append(("--attention-softmax-in-fp32", True))
    a.append(("--transformer-impl", extra.get("transformer_impl", "transformer_engine")))
    if extra.get("log_throughput", True):
        a.append(("--log-throughput", True))
    if mup and mup_mode == "native":
        a += [("--use-mup", True), ("--mup-base-hidden-size", hp["base_width"]),
              ("--mup-embedding-mult", hp["groups"]["embedding"]["multiplier"]),
              ("--mup-output-mult", hp["groups"]["readout"]["multiplier"] * hp["m_d"]),
              ("--mup-base-head-dim", float(s.head_dim)), ("--mup-attn-scale-power", 1.0)]
    return a


def args_to_json(args: list[tuple[str, Any]], plan: Plan) -> dict[str, Any]:
    """flag -> value (strings as Megatron parses them; True for switches; lists for nargs)."""
    out: dict[str, Any] = {}
    for flag, value in args:
        if value is True:
            out[flag] = True
        elif isinstance(value, Shell):
            out[flag] = value.replace('"', "").replace("${CHECKPOINT_DIR}", fmt(data_value(plan, "checkpoint_dir")))
        elif value is None:
            key = {"--data-path": "data_path", "--tokenizer-model": "tokenizer_model", "--save": "checkpoint_dir",
                   "--load": "checkpoint_dir", "--data-cache-path": "cache_dir"}[flag]
            v = data_value(plan, key)
            out[flag] = [fmt(x) for x in v] if isinstance(v, list) else ([v] if flag == "--data-path" else v)
        else:
            out[flag] = fmt(value)
    return out


# ---------------------------------------------------------------------------------- validation
def _load_flags(flags_json_path: str | Path) -> dict[str, dict[str, Any]]:
    path = Path(flags_json_path)
    if not path.exists():
        raise UserError(f"Megatron flag list not found: {path}; pass shared/data/megatron/pretrain_gpt_flags.json")
    rows = read_json(path, "Megatron flag list")
    if not isinstance(rows, list) or not all(isinstance(r, dict) and isinstance(r.get("opts"), list) for r in rows):
        raise UserError(f"Megatron flag list {path} is not a list of {{'opts': [...], ...}} rows; "
                        "pass shared/data/megatron/pretrain_gpt_flags.json")
    table: dict[str, dict[str, Any]] = {}
    for r in rows:
        for o in r["opts"]:
            table[o] = r
    return table


def _check_value(flag: str, spec: dict[str, Any], value: Any) -> str | None:
    nargs = spec.get("nargs")
    if nargs == 0:
        return None if value is True else f"{flag} is a switch; got a value {value!r}"
    if value is True:
        return f"{flag} needs a value"
    values = value if isinstance(value, list) else [value]
    if nargs in (None,) and len(values) != 1:
        return f"{flag} takes one value, got {len(values)}"
    if isinstance(nargs, int) and len(values) != nargs:
        return f"{flag} takes {nargs} values, got {len(values)}"
    if nargs == "+" and not values:
        return f"{flag} needs at least one value"
    typ = spec.get("type")
    choices, complete = _parse_choices(flag, spec.get("choices"))
    for v in values:
        text = str(v)
        try:
            if typ == "int":
                int(text)
            elif typ == "float":
                float(text)
        except ValueError:
            return f"{flag} expects {typ}, got {text!r}"
        if choices is not None and text not in choices:
            if complete:
                return f"{flag} must be one of {choices}, got {text!r}"
            # the dump cut this choice list short: only values in its visible part can be checked
            return f"{flag} value {text!r} is not among the visible choices {choices} (the dump's list is truncated)"
    return None


#: The flag dump stores ``repr(choices)`` cut at ~120 characters. Full lists for the cut ones we
#: emit, from Megatron-LM's parser (shared/notes/megatron-and-planning.md §1a, "Data and tokenizer").
_FULL_CHOICES = {
    "--tokenizer-type": ["BertWordPieceLowerCase", "BertWordPieceCase", "GPT2BPETokenizer", "SentencePieceTokenizer",
                         "GPTSentencePieceTokenizer", "HuggingFaceTokenizer", "Llama2Tokenizer", "TikTokenizer",
                         "MultimodalTokenizer", "NullTokenizer", "NullMultimodalTokenizer", "SFTTokenizer"],
}


def _parse_choices(flag: str, text: str | None) -> tuple[list[str] | None, bool]:
    """(choices as strings, whether the list is complete) from the dump's repr text."""
    if not text:
        return None, True
    if flag in _FULL_CHOICES:
        return list(_FULL_CHOICES[flag]), True
    complete = text.rstrip().endswith((")", "]"))
    try:
        return [str(c) for c in ast.literal_eval(text)], True
    except (ValueError, SyntaxError):
        pass
    enum_names = re.findall(r"<\w+\.(\w+): [^>]*>", text)
    if enum_names:
        return enum_names, complete
    return re.findall(r"'([^']*)'", text), complete


def validate_args(args: dict[str, Any] | list[tuple[str, Any]], flags_json_path: str | Path) -> list[str]:
    """Problems with ``args`` against Megatron's parser dump: unknown flags, bad types/choices/nargs.

    ``args`` is a flag -> value dict (``megatron_args.json``; True for switches) or build_args'
    pairs. Returns a list of messages (empty = valid).
    """
    table = _load_flags(flags_json_path)
    items = args.items() if isinstance(args, dict) else args
    problems = []
    for flag, value in items:
        spec = table.get(flag)
        if spec is None:
            problems.append(f"{flag} is not a pretrain_gpt.py flag")
            continue
        if value is None or isinstance(value, Shell):
            continue  # placeholder filled from a shell variable
        msg = _check_value(flag, spec, value if value is True or isinstance(value, list) else fmt(value))
        if msg:
            problems.append(msg)
    return problems


def check_layout(plan: Plan) -> list[str]:
    """Megatron's own assertions (notes §1c) for this plan's shape and layout."""
    s, t, lay = plan.model_shape, plan.training, plan.layout
    tp, pp, cp, n = int(lay["tp"]), int(lay["pp"]), int(lay.get("cp", 1)), int(lay["n_gpus"])
    errs = []
    if n % (tp * pp * cp):
        errs.append(f"world size {n} is not divisible by TP*PP*CP = {tp * pp * cp}")
    dp = n // (tp * pp * cp) if tp * pp * cp else 0
    if s.n_heads % tp:
        errs.append(f"heads {s.n_heads} not divisible by TP {tp}")
    if s.n_kv_heads % tp and tp % s.n_kv_heads:
        errs.append(f"kv heads {s.n_kv_heads} and TP {tp}: neither divides the other")
    if s.d_ffn % tp:
        errs.append(f"ffn {s.d_ffn} not divisible by TP {tp}")
    if s.n_layers % pp:
        errs.append(f"layers {s.n_layers} not divisible by PP {pp}")
    if dp and t["global_batch"] % (int(lay["micro_batch"]) * dp):
        errs.append(f"global batch {t['global_batch']} not divisible by micro-batch x DP = {lay['micro_batch']} x {dp}")
    if cp > 1 and t["seq_len"] % (2 * cp):
        errs.append(f"seq {t['seq_len']} not divisible by 2*CP")
    return errs


# ---------------------------------------------------------------------------------- scripts
def _mup_comment(plan: Plan, mup_mode: str) -> list[str]:
    hp = plan.hparams
    if not hp:
        return ["# Parameterization: standard (SP); no μP hyperparameters in this plan."]
    g, m = hp["groups"], hp["m_d"]
    if hp["parameterization"] != "mup":
        return ["# Parameterization: SP hparams from a proxy at another width were used as is:",
                "# SP has no transfer guarantee across width (the optimal LR drifts roughly like 1/width)."]
    lines = [
        f"# μP at width {hp['d_model']} (base width {hp['base_width']}, m_d = {m:.6g}). Megatron trains in SP;",
    ]
    if mup_mode == "translate":
        lines += [
            "# what the flags below express:",
            f"#   --lr {fmt(g['hidden']['lr'])}          hidden matrices (QKV, out, MLP): base lr / m_d",
            f"#   --decoupled-lr {fmt(g['embedding']['lr'])}  word embedding + output layer (Megatron's",
            "#                       is_embedding_or_output_parameter): base lr, not scaled",
            f"#   --init-method-std {fmt(g['hidden']['init_std'])}  hidden init: base std / sqrt(m_d)",
            f"#   --embedding-init-method-std {fmt(g['embedding']['init_std'])}  embedding init: base std",
            "# what they CANNOT express (the run is then not exactly μP):",
            f"#   * output multiplier alpha_out/m_d = {fmt(g['readout']['multiplier'])} on the logits (MuReadout).",
            "#     It cannot be folded into the output weights: Adam's update size does not scale with them.",
            "#     Fix: multiply the final hidden state by this constant before the output layer (patch",
            "#     GPTModel's output path), or use Megatron-LM main's --use-mup (rerun `scaleplan export",
            "#     --megatron-mup native`).",
            f"#   * attention scale attn_mult/d_head = {fmt(hp['attention']['scale'])} instead of 1/sqrt(d_head);",
            "#     with d_head fixed across widths this is a constant factor (microsoft/mup#17), but it",
            "#     differs from the proxy; Megatron exposes no softmax scale flag outside --use-mup.",
            f"#   * input multiplier alpha_in = {fmt(g['embedding']['multiplier'])} on the embedding output"
            + (" (1: nothing to do)." if g['embedding']['multiplier'] == 1 else "; patch the embedding forward."),
            "#   * zero-init readout and query: Megatron has no flag; the output layer is initialised with",
            "#     --init-method-std and the residual output projections with std/sqrt(2L).",
            f"#   * norms get --lr (= lr/m_d) instead of the base lr {fmt(g['norms']['lr'])}.",
            f"#   * weight decay: one --weight-decay for all matrices; set to the hidden value"
            f" {fmt(g['hidden']['weight_decay'])} (MuAdamW rule wd*m_d when wd_rule=mup),",
            f"#     so embedding/output decay with that value instead of {fmt(g['embedding']['weight_decay'])}.",
        ]
    else:
        lines += [
            "# using Megatron-LM main's native μP (--use-mup): it scales hidden LR by 1/width_mult, hidden",
            "# init std by 1/sqrt(width_mult), the attention softmax by 1/kv_channels^power and the logits",
            "# by --mup-output-mult/width_mult. Differences from our proxy: it also divides the hidden Adam",
            "# eps by width_mult and scales the output-layer init by depth; readout/query are not zero-init.",
            "# These flags are absent from core_v0.13-0.15; use --megatron-mup translate there.",
        ]
    return lines


def launch_script(plan: Plan, args: list[tuple[str, Any]], *, command: str | None = None,
                  mup_mode: str = "translate", title: str = "Megatron-LM launch") -> str:
    lay = plan.layout
    gpn = int(lay.get("gpus_per_node") or min(8, int(lay["n_gpus"])))
    nnodes = max(1, int(lay["n_gpus"]) // gpn)
    L = ["#!/usr/bin/env bash"] + header_lines(plan, title, command) + [
        f"# Plan: {lay['n_gpus']} GPUs = {nnodes} node(s) x {gpn}. On one node: bash launch.sh. On several: run it on",
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
        "export CUDA_DEVICE_MAX_CONNECTIONS=1  # required by Megatron for TP/CP overlap on Hopper",
        "",
    ]
    if lay.get("fsdp") and lay.get("shard_group") and lay["shard_group"] < lay["dp"]:
        L += [f"# Sharding: the plan uses FSDP hybrid shard (shard over {lay['shard_group']} GPUs, replicate across",
              f"# {lay['dp'] // lay['shard_group']} groups). Megatron's --use-torch-fsdp2 shards over all {lay['dp']} DP ranks",
              "# instead (less memory, more inter-node traffic); the torchtitan export expresses hybrid sharding."]
    L += _mup_comment(plan, mup_mode)
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


def sbatch_script(plan: Plan, launch_name: str = "launch.sh", *, command: str | None = None) -> str:
    lay = plan.layout
    gpn = int(lay.get("gpus_per_node") or min(8, int(lay["n_gpus"])))
    nnodes = max(1, int(lay["n_gpus"]) // gpn)
    job = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in (plan.preset or "scaleplan"))[:40]
    days = plan.time_cost.get("days") if plan.time_cost else None
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


def export_megatron(plan: Plan, out_dir: str | Path, *, command: str | None = None, mup_mode: str = "translate",
                    flags_json_path: str | Path | None = None) -> dict[str, Any]:
    """Write launch.sh, sbatch.sh, megatron_args.json (and phase scripts when the plan has phases)."""
    errs = check_layout(plan)
    if errs:
        raise UserError("the plan's layout breaks Megatron's rules: " + "; ".join(errs)
                        + "; re-plan with other --tp/--pp/--gpus")
    files: dict[str, Any] = {}
    scripts = []
    runs = _phase_runs(plan) if plan.phases else [(None, None)]
    all_args = {}
    for name, ph in runs:
        args = build_args(plan, mup_mode=mup_mode, phase=ph)
        if flags_json_path is not None:
            probs = validate_args(args, flags_json_path)
            if probs:
                raise UserError("exported Megatron arguments are invalid: " + "; ".join(probs))
        suffix = f"_{name}" if name else ""
        launch = f"launch{suffix}.sh"
        files[launch] = launch_script(plan, args, command=command, mup_mode=mup_mode,
                                      title=f"Megatron-LM launch{(' ' + name) if name else ''}")
        files[f"sbatch{suffix}.sh"] = sbatch_script(plan, launch, command=command)
        all_args[name or "main"] = args_to_json(args, plan)
        scripts += [launch, f"sbatch{suffix}.sh"]
    meta = {"scaleplan_plan_hash": plan.plan_hash, "command": one_line(command or plan.meta.get("command", "")),
            "mup_mode": mup_mode}
    if len(all_args) == 1:
        files["megatron_args.json"] = {"meta": meta, "args": all_args["main"]}
    else:
        files["megatron_args.json"] = {"meta": meta, "phases": all_args}
    paths = write_files(out_dir, files, executable=tuple(scripts))
    return {"trainer": "megatron", "files": [str(p) for p in paths], "plan_hash": plan.plan_hash}


def _phase_runs(plan: Plan) -> list[tuple[str, dict[str, Any]]]:
    """One Megatron run per schedule phase; phases after the first restart the step counter."""
    runs = []
    for i, p in enumerate(plan.phases):
        iters = int(p["train_iters"])
        runs.append((f"phase{i + 1}", {
            "train_iters": iters, "lr": float(p["lr"]), "min_lr": float(p["min_lr"]),
            "warmup_iters": int(p.get("warmup_iters", 0)), "lr_decay_iters": iters,
            "decay_style": p.get("decay_style", "linear"), "name": f"phase{i + 1}",
            "previous": f"phase{i}" if i > 0 else None,
        }))
    return runs
