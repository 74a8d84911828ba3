"""Megatron-LM's flags: the run-level flags a plan maps to, and checks against Megatron's parser.

* :func:`parallel_args`: TP/PP/CP, the virtual pipeline, sequence parallelism, sharding and the
  communication-overlap flags the time model assumes; :func:`launch_env` the environment they need.
* :func:`run_ops` / :func:`operations_args`: the run's cadence from ``plan.operations`` (validation,
  logging, checkpoints, TensorBoard, loss checks) and :func:`run_check_lines`, the launch header
  that states the predicted final loss and how to check it mid-run. Precedence for a preset
  (``training.megatron_extra``, a published run's settings): its log and save intervals and its
  --split win (they reproduce the run); a published eval cadence wins only when it validates: a
  published ``eval_iters`` 0 is replaced by the plan's cadence and a split without a validation
  share by :data:`PRESET_VALID_SPLIT`, because a run that never measures validation loss cannot
  be checked against the plan. Each such change is stated in the header.
* :func:`validate_args` checks flags against a dump of Megatron's own parser
  (shared/data/megatron/pretrain_gpt_flags.json: per option its spellings ``opts``, ``nargs``,
  ``type`` and ``choices`` as ``repr`` text cut at ~120 characters): unknown flags, wrong types,
  choices or value counts. :func:`parse_argv` reads an argument list back into flag -> value.

Conventions: a value ``True`` is a bare switch; ``None`` or a :class:`Shell` value is a placeholder
filled from the launch script's variables, not checked.
"""
from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planner.errors import UserError
from planner.export.common import data_value, fmt, one_line
from planner.export.megatron_validate import split_weights
from planner.io import read_json
from planner.plan import Plan
from planner.plan.operations import eval_cadence

#: What the export wrote before plans had an ``operations`` section (used for such plans only).
LEGACY_LOG_INTERVAL = 10
LEGACY_SAVE_INTERVAL = 1000
#: --split of our own plans: 1% of every data prefix's documents held out for validation.
DEFAULT_SPLIT = "99,1,0"
#: --split of a preset whose published split holds nothing out: 0.1% held out, so that validation
#: exists while the published training data changes as little as it can.
PRESET_VALID_SPLIT = "999,1,0"


class Shell(str):
    """A shell expression written unquoted into the script (only ever built from our own constants)."""


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


def parse_argv(argv: list[str]) -> dict[str, Any]:
    """flag -> value of an argument list as pretrain_gpt.py receives it (a launch script's ``ARGS``):
    a flag without a value is ``True``, one value a string, several a list."""
    out: dict[str, Any] = {}
    flag = None
    for tok in argv:
        if tok.startswith("--") and len(tok) > 2:
            flag = tok
            out[flag] = True
        elif flag is None:
            raise UserError(f"argument {tok!r:.60} comes before any flag; pass pretrain_gpt.py's arguments only")
        else:
            cur = out[flag]
            out[flag] = tok if cur is True else (cur + [tok] if isinstance(cur, list) else [cur, tok])
    return out


# ---------------------------------------------------------------------------------- plan -> run flags
def parallel_args(plan: Plan) -> list[tuple[str, Any]]:
    """TP/PP/CP, the virtual pipeline, sequence parallelism, sharding and the overlap flags.

    * VPP (``layout.vpp`` > 1): ``--num-virtual-stages-per-pipeline-rank`` (Megatron main; at most one
      of the three VPP flags; layers/PP divisible by it; PP > 1: megatron_validate rules).
    * SP exactly when the plan has it (Megatron drops it at TP 1; the layout refuses that).
    * Overlap: the time model charges no data-parallel communication (planner/parallel/throughput.py,
      ``efficiency_factors`` has no DP term), i.e. it assumes the gradient reduction hides behind
      the backward pass: ``--overlap-grad-reduce`` whenever gradients are reduced across ranks
      (DP*CP > 1), with the distributed optimizer also ``--overlap-param-gather`` (validate_args
      requires the distributed optimizer and the grad overlap for it). Torch FSDP2 (no PP, no
      distributed optimizer, untied embeddings, torch_dist checkpoints: notes §1c rule 17)
      overlaps its gathers itself (Megatron sets FSDP2's backward prefetch) and has no such flag;
      it shards over all of DP. FSDP hybrid shard has no Megatron flag: refused
      (:func:`hybrid_shard_refusal` gives the nearest layouts with their memory and traffic).
    """
    lay = plan.layout
    if lay.fsdp and lay.shard_size < lay.dp:
        raise UserError(hybrid_shard_refusal(plan))
    a: list[tuple[str, Any]] = [("--tensor-model-parallel-size", lay.tp), ("--pipeline-model-parallel-size", lay.pp),
                                ("--context-parallel-size", lay.cp)]
    if lay.vpp > 1:
        a.append(("--num-virtual-stages-per-pipeline-rank", lay.vpp))
    if lay.sequence_parallel and lay.tp > 1:
        a.append(("--sequence-parallel", True))
    if lay.fsdp:
        if lay.pp > 1:
            raise UserError("Megatron's torch FSDP2 (--use-torch-fsdp2) rules out PP > 1; re-plan with "
                            "--sharding dist-opt or --pp 1")
        return a + [("--use-torch-fsdp2", True), ("--no-gradient-accumulation-fusion", True),
                    ("--ckpt-format", "torch_dist")]
    if lay.distributed_optimizer:
        a.append(("--use-distributed-optimizer", True))
    if lay.dp * lay.cp > 1:
        a.append(("--overlap-grad-reduce", True))
        if lay.distributed_optimizer:
            a.append(("--overlap-param-gather", True))
    return a


def hybrid_shard_refusal(plan: Plan) -> str:
    """Why Megatron-LM cannot run the plan's hybrid shard, and the nearest layouts in numbers.

    What this exporter writes (``--use-distributed-optimizer``, ``--use-torch-fsdp2``) shards over
    the whole data-parallel group. Megatron-LM main (the commit of megatron_validate.py) also has a
    hybrid mode in Megatron-FSDP: ``--use-megatron-fsdp`` with ``--num-distributed-optimizer-instances``
    R > 1 shards within DP/R consecutive ranks and replicates across R (``mcore_fsdp_adapter.py``
    ``_init_dist_index``: ``enable_hsdp``, outer ``--outer-dp-sharding-strategy no_shard``), but
    megatron_validate.py does not model Megatron-FSDP's rules, so it is named, not written. The
    message gives memory per GPU (planner/parallel/memory.py) and data-parallel bytes per GPU and
    step (planner/parallel/dp_traffic.py) of the plan and of the two nearest exportable layouts.
    """
    from planner.parallel.dp_traffic import distributed_optimizer_traffic, hsdp_traffic
    from planner.parallel.memory import memory_per_gpu

    lay, gpn = plan.layout, plan.placement.gpus_per_node
    shape = plan.shape.replace(seq_len=plan.training.seq_len)
    params = plan.shape.total_params / (lay.tp * lay.pp)
    gib = 2.0 ** 30
    options = {
        f"the plan (hybrid shard over {lay.shard_size}, {lay.dp // lay.shard_size} replicas)":
            (lay, hsdp_traffic(params, lay.dp, lay.shard_size, gpn)),
        f"--use-torch-fsdp2 (full shard over all {lay.dp} DP ranks; `--sharding fsdp`)":
            (lay.replace(shard_group=None), hsdp_traffic(params, lay.dp, lay.dp, gpn)),
        f"--use-distributed-optimizer (ZeRO-1 over all {lay.dp} DP ranks; `--sharding dist-opt`)":
            (lay.replace(fsdp=False, zero_stage=1, shard_group=None), distributed_optimizer_traffic(params, lay.dp, gpn)),
    }
    parts = [f"{name}: {memory_per_gpu(shape, layout).total / gib:.1f} GiB per GPU, "
             f"{traffic.inter_node / 1e9:.1f} GB across nodes + {traffic.intra_node / 1e9:.1f} GB within a node "
             "per GPU and step" for name, (layout, traffic) in options.items()]
    replicas = lay.dp // lay.shard_size
    return ("the Megatron export cannot express FSDP hybrid sharding (shard within a node, replicate across "
            "nodes): --use-distributed-optimizer and --use-torch-fsdp2 shard over the whole data-parallel group "
            f"(Megatron-FSDP's hybrid mode, --use-megatron-fsdp --num-distributed-optimizer-instances {replicas}, "
            "exists in Megatron-LM main but is not modelled or validated here). " + "; ".join(parts)
            + ". Export to torchtitan (`--trainer torchtitan`: data_parallel_shard_degree x "
            "data_parallel_replicate_degree), or re-plan with the nearest Megatron layout (--sharding fsdp or "
            "--sharding dist-opt)")


def launch_env(plan: Plan) -> dict[str, str | None]:
    """Environment the launch script sets (None = unset): Megatron needs CUDA_DEVICE_MAX_CONNECTIONS=1
    for TP/CP before Blackwell, and torch FSDP2 refuses that value (validate_args)."""
    return {"CUDA_DEVICE_MAX_CONNECTIONS": None if plan.layout.fsdp else "1"}


@dataclass(frozen=True)
class RunOps:
    """The cadence one launch uses (steps), and a note for every value not taken from plan.operations."""

    log_interval: int
    eval_interval: int
    eval_iters: int  # global batches per evaluation
    eval_tokens: int
    save_interval: int
    save_source: str
    split: str
    notes: tuple[str, ...] = ()


def run_ops(plan: Plan, train_iters: int) -> RunOps:
    """The cadence of a launch of ``train_iters`` steps (module docstring: precedence)."""
    t, extra, notes = plan.training, plan.training.megatron_extra or {}, []
    ops = plan.operations
    if ops is None:
        ev, ei = eval_cadence(t.global_batch, t.seq_len, train_iters)
        log, save, source = LEGACY_LOG_INTERVAL, LEGACY_SAVE_INTERVAL, "the exporter's old default"
        notes.append("the plan has no operations section (made before plans had one): logging and checkpoint "
                     "intervals are the exporter's old defaults, the eval cadence is planner.plan.operations."
                     "eval_cadence; re-plan for the plan's own")
    else:
        log, ev, ei, save, source = (ops.log_interval, ops.eval_interval, ops.eval_iters, ops.save_interval,
                                     ops.save_interval_source)
    log = _extra_int(extra, "log_interval", log)
    if "save_interval" in extra:
        save, source = _extra_int(extra, "save_interval", save), "the published run's"
    if _extra_int(extra, "eval_iters", 0) > 0:
        ei, ev = _extra_int(extra, "eval_iters", ei), _extra_int(extra, "eval_interval", ev)
    elif "eval_iters" in extra:
        notes.append("the published run did not validate (eval_iters 0); this launch measures the validation "
                     "loss on the plan's cadence")
    split = str(extra.get("split", DEFAULT_SPLIT))
    weights = split_weights(split)
    if weights is None or weights[1] <= 0:
        notes.append(f"the published --split {split} holds out no validation data; this launch holds out 0.1% "
                     f"(--split {PRESET_VALID_SPLIT})")
        split = PRESET_VALID_SPLIT
    return RunOps(log_interval=log, eval_interval=min(ev, train_iters), eval_iters=ei,
                  eval_tokens=ei * t.global_batch * t.seq_len, save_interval=min(save, train_iters),
                  save_source=source, split=split, notes=tuple(notes))


def _extra_int(extra: dict[str, Any], key: str, default: int) -> int:
    """An integer from ``training.megatron_extra`` (plan.yaml data: anything else is a UserError)."""
    v = extra.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int):
        raise UserError(f"plan section training.megatron_extra.{key} must be an integer, got {v!r:.40}; fix that "
                        "value or regenerate the plan with `scaleplan plan`")
    return v


def operations_args(ops: RunOps, tensorboard_dir: Shell) -> list[tuple[str, Any]]:
    """Validation split and cadence, checkpoint interval, logging and TensorBoard, loss checks.

    The NaN/Inf loss check is Megatron's default (pretrain_gpt.py loss_func; only a ``--no-`` switch
    exists); ``--check-for-spiky-loss`` flags a loss 10x above the largest seen and
    ``--rerun-mode validate_results`` reruns such a step to tell a transient fault from a
    reproducible one (megatron/core/rerun_state_machine.py).
    """
    return [("--split", ops.split), ("--save-interval", ops.save_interval), ("--log-interval", ops.log_interval),
            ("--eval-interval", ops.eval_interval), ("--eval-iters", ops.eval_iters),
            ("--tensorboard-dir", tensorboard_dir), ("--tensorboard-log-interval", ops.log_interval),
            ("--log-timers-to-tensorboard", True), ("--log-validation-ppl-to-tensorboard", True),
            ("--log-memory-to-tensorboard", True), ("--check-for-spiky-loss", True),
            ("--rerun-mode", "validate_results")]


def predicted_loss(plan: Plan) -> tuple[float | None, str]:
    """(the plan's predicted final loss in nats/token or None, what that number is): the law at the chosen
    shape and tokens (``operations.predicted_loss``), else the law's loss at its own N*, D*."""
    s, a = plan.shape, plan.allocation
    size = f"{s.total_params:.4g} parameters, {plan.tokens:.4g} tokens"
    at_shape = getattr(plan.operations, "predicted_loss", None)
    cont = getattr(plan.training, "continue_from", None)  # continual pretraining (planner/plan/continuation.py)
    if at_shape is not None and cont:
        return at_shape, (f"the law {cont.get('law') or a.law} at the planned shape and the tokens seen plus planned "
                          f"({s.total_params:.4g} parameters, {cont['tokens_seen']:.4g} + {plan.tokens:.4g} tokens)")
    if at_shape is not None:
        return at_shape, f"the law {a.law} at the planned shape ({size})"
    if a.loss is None:
        return None, "none: a published recipe, no scaling law consulted"
    lo_hi = a.ci.get("loss") if a.ci else None
    ci = f", 95% CI [{lo_hi[0]:.4g}, {lo_hi[1]:.4g}]" if lo_hi and None not in lo_hi else ""
    return a.loss, (f"the law {a.law} at its compute-optimal N* = {a.N:.4g}, D* = {a.D:.4g}{ci}; the plan stores "
                    f"no loss for its chosen shape ({size})")


def run_check_lines(plan: Plan, ops: RunOps) -> list[str]:
    """Launch-header comments: the predicted final loss and the cadence that lets a person check it."""
    loss, what = predicted_loss(plan)
    items = [f"predicted final loss {loss:.4f} nats/token: {what}. Absolute losses depend on the data and "
             "tokenizer the law was fitted on: compare the curve's trend with it" if loss is not None
             else f"predicted final loss: {what}",
             f"validation loss every {ops.eval_interval} steps over {ops.eval_iters} batches ({ops.eval_tokens:.3g} "
             f"tokens) of the --split {ops.split} validation share; TensorBoard in $CHECKPOINT_DIR/tensorboard",
             f"logs every {ops.log_interval} steps; checkpoint every {ops.save_interval} steps ({ops.save_source})",
             "a NaN/Inf loss stops the run (Megatron's default check); --check-for-spiky-loss flags a loss 10x "
             "above the largest seen"] + [f"note: {n}" for n in ops.notes]
    lines = ["# Run checks:"]
    for item in items:
        lines += ["#   " + x for x in textwrap.wrap(one_line(item), 96, subsequent_indent="  ")]
    return lines


def run_checks_meta(plan: Plan) -> dict[str, Any]:
    """megatron_args.json's record of the predicted final loss and the main run's cadence."""
    loss, what = predicted_loss(plan)
    ops = run_ops(plan, plan.training.train_iters)
    return {"predicted_final_loss": loss, "predicted_loss_is": one_line(what), "eval_interval": ops.eval_interval,
            "eval_iters": ops.eval_iters, "eval_tokens": ops.eval_tokens, "log_interval": ops.log_interval,
            "save_interval": ops.save_interval, "split": ops.split, "notes": list(ops.notes)}
