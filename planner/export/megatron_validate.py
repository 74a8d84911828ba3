"""Megatron-LM's own argument rules, for the flags scaleplan emits: a pure-Python checker (no torch).

:func:`megatron_arg_problems` says what Megatron-LM would reject, or silently change, when
``pretrain_gpt.py`` starts with ``args`` on ``world_size`` GPUs; the Megatron exporter runs it on
every argument list it writes and refuses rather than write a script that dies at startup.
Written from our reading of NVIDIA/Megatron-LM at :data:`MEGATRON_COMMIT` (main, 2026-08-22); each
rule names its file, function and lines there (``[file::function Lnnn]`` ends each message). Rules
marked *scaleplan* are not Megatron assertions but places where Megatron would silently run
something other than the plan (it turns a flag off, ignores it, or never evaluates).

Conventions: ``args`` maps a flag to its value as ``megatron_args.json`` stores it or ``build_args``
makes it (a list of pairs works too): ``True`` a switch, a string or number a value, a list an
nargs value, ``None`` a placeholder the script fills in (not checked); an absent flag has
Megatron's default. ``env`` is the environment the launch script sets (the
CUDA_DEVICE_MAX_CONNECTIONS rules are checked only when it is given).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

MEGATRON_COMMIT = "d98e8a64ddf34856e74b24714e3bedb2f5a39553"
_ARGS = "megatron/training/arguments.py::validate_args"
_VPP_FLAGS = ("--num-layers-per-virtual-pipeline-stage", "--num-virtual-stages-per-pipeline-rank",
              "--pipeline-model-parallel-layout")
#: Flags that need a TensorBoard writer (global_vars.py L240-246: made only with --tensorboard-dir).
_TENSORBOARD_FLAGS = ("--log-timers-to-tensorboard", "--log-validation-ppl-to-tensorboard",
                      "--log-memory-to-tensorboard", "--log-world-size-to-tensorboard")
_MUP_FLAGS = ("--mup-base-hidden-size", "--mup-embedding-mult", "--mup-output-mult", "--mup-base-head-dim",
              "--mup-attn-scale-power")


class _Bad(Exception):
    """A value that cannot be read: a problem of the rule that read it."""


class _Args:
    """Typed reads of an argument mapping, with Megatron's defaults for absent flags."""

    def __init__(self, args: Mapping[str, Any], world_size: int, env: Mapping[str, Any] | None):
        self.raw, self.world, self.env = args, world_size, env

    def on(self, flag: str) -> bool:
        return self.raw.get(flag) is True

    def has(self, flag: str) -> bool:
        return flag in self.raw and self.raw[flag] is not False

    def num(self, flag: str, default: Any = None, kind: type = int) -> Any:
        v = self.raw.get(flag)
        if v is None:
            return default
        if v is True or isinstance(v, (list, tuple)):
            raise _Bad(f"{flag} needs one {kind.__name__} value, got {v!r:.60}")
        text = str(v).strip()
        try:
            return int(text) if kind is int else float(text)
        except ValueError:
            raise _Bad(f"{flag} expects {kind.__name__}, got {text!r:.60}") from None

    def text(self, flag: str, default: str | None = None) -> str | None:
        v = self.raw.get(flag)
        return default if v is None or v is True else str(v)

    tp = property(lambda self: self.num("--tensor-model-parallel-size", 1))
    pp = property(lambda self: self.num("--pipeline-model-parallel-size", 1))
    cp = property(lambda self: self.num("--context-parallel-size", 1))

    @property
    def dp(self) -> int | None:
        """world / (TP*PP*CP) (validate_args L448), None when that does not divide."""
        model = self.tp * self.pp * self.cp
        return self.world // model if model > 0 and self.world % model == 0 else None

    fsdp = property(lambda self: self.on("--use-torch-fsdp2") or self.on("--use-megatron-fsdp"))


@dataclass(frozen=True)
class Rule:
    """One rule: its name (in every message), where Megatron enforces it, and its check."""

    name: str
    source: str  # file::function Lnnn at MEGATRON_COMMIT
    check: Callable[[_Args], list[str]]


RULES: list[Rule] = []


def _rule(name: str, source: str):
    def register(fn: Callable[[_Args], list[str]]) -> Callable[[_Args], list[str]]:
        RULES.append(Rule(name, source, fn))
        return fn
    return register


def megatron_arg_problems(args: Mapping[str, Any] | list[tuple[str, Any]], world_size: int, *,
                          env: Mapping[str, Any] | None = None) -> list[str]:
    """Every rule ``args`` breaks on ``world_size`` GPUs, as "rule: problem; fix [source]" (empty = valid)."""
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size <= 0:
        raise ValueError(f"world_size must be a positive integer, got {world_size!r}")
    a = _Args(dict(args.items() if isinstance(args, Mapping) else args), world_size, env)
    problems = []
    for r in RULES:
        try:
            found = r.check(a)
        except _Bad as e:
            found = [f"{e}; write a number there"]
        problems += [f"{r.name}: {p} [{r.source} @ {MEGATRON_COMMIT[:8]}]" for p in found]
    return problems


# ---------------------------------------------------------------------------------- parallel layout
@_rule("world-size", f"{_ARGS} L432")
def _world_size(a: _Args) -> list[str]:
    """The world size must be a multiple of TP*PP*CP (the model-parallel size)."""
    model = a.tp * a.pp * a.cp
    if min(a.tp, a.pp, a.cp) < 1 or a.world % model:
        return [f"world size {a.world} is not divisible by TP*PP*CP = {a.tp}*{a.pp}*{a.cp}; choose sizes whose "
                "product divides the GPU count"]
    return []


@_rule("micro-batches", "megatron/core/num_microbatches_calculator.py::ConstantNumMicroBatchesCalculator.__init__ "
                        f"L380-391; {_ARGS} L693-703, L708-719")
def _micro_batches(a: _Args) -> list[str]:
    """A micro-batch size > 0 is required; GBS (default mbs*DP) must be a positive multiple of mbs*DP, and
    so must the eval global batch (default GBS) of the eval micro-batch (default mbs) times DP."""
    mbs = a.num("--micro-batch-size")
    if mbs is None or mbs <= 0:
        return ["--micro-batch-size must be given and positive; set it"]
    if a.dp is None:
        return []  # reported by world-size
    gbs = a.num("--global-batch-size", mbs * a.dp)
    if gbs <= 0 or gbs % (mbs * a.dp):
        return [f"global batch {gbs} is not a positive multiple of micro-batch x DP = {mbs}x{a.dp}; change "
                "--global-batch-size or --micro-batch-size"]
    egbs, embs = a.num("--eval-global-batch-size", gbs), a.num("--eval-micro-batch-size", mbs)
    if embs <= 0 or egbs % (embs * a.dp):
        return [f"eval global batch {egbs} is not a multiple of eval micro-batch x DP = {embs}x{a.dp}; change "
                "--eval-global-batch-size or --eval-micro-batch-size"]
    return []


@_rule("pipeline-split", f"{_ARGS} L929-997; megatron/core/transformer/transformer_block.py::"
                         "get_num_layers_to_build L155-178")
def _pipeline_split(a: _Args) -> list[str]:
    """At most one VPP flag; layers (+1 per account-for flag) divisible by PP, and per stage by the VPP
    degree (layers per virtual stage: validate_args L968-972; virtual stages per rank: the builder)."""
    given = [f for f in _VPP_FLAGS if a.has(f)]
    if len(given) > 1:
        return [f"{' and '.join(given)} are given; keep one (Megatron allows at most one)"]
    layers = a.num("--num-layers")
    if layers is None or a.has("--decoder-first-pipeline-num-layers") or a.has("--decoder-last-pipeline-num-layers") \
            or a.has("--pipeline-model-parallel-layout"):
        return []  # uneven splits and explicit layouts are validated elsewhere; we emit neither
    layers += a.on("--account-for-embedding-in-pipeline-split") + a.on("--account-for-loss-in-pipeline-split")
    if a.pp < 1 or layers % a.pp:
        return [f"{layers} layers are not divisible by PP {a.pp}; choose a PP that divides the layers"]
    per_stage = layers // a.pp
    per_virtual = a.num("--num-layers-per-virtual-pipeline-stage")
    if per_virtual is not None and (per_virtual < 1 or per_stage % per_virtual):
        return [f"{per_stage} layers per pipeline stage are not divisible by {per_virtual} layers per virtual "
                "stage; choose a divisor"]
    vpp = a.num("--num-virtual-stages-per-pipeline-rank")
    if vpp is not None and (vpp < 1 or (a.pp > 1 and per_stage % vpp)):
        return [f"{per_stage} layers per pipeline stage are not divisible by {vpp} virtual stages; choose a VPP "
                "that divides the layers per stage"]
    return []


def _virtual_stages(a: _Args) -> int:
    """The interleaving degree the VPP flags ask for (1 = none)."""
    per_virtual, layers = a.num("--num-layers-per-virtual-pipeline-stage"), a.num("--num-layers")
    if per_virtual and layers and a.pp > 0 and per_virtual > 0:
        return max(1, layers // a.pp // per_virtual)
    return a.num("--num-virtual-stages-per-pipeline-rank", 1)


@_rule("interleaved-schedule", f"{_ARGS} L1000-1009")
def _interleaved(a: _Args) -> list[str]:
    """Virtual stages need PP > 1, and PP > 2 when P2P overlap is off (--no-overlap-p2p-communication)."""
    vpp, need = _virtual_stages(a), 3 if a.on("--no-overlap-p2p-communication") else 2
    if vpp > 1 and a.pp < need:
        return [f"the interleaved schedule ({vpp} virtual stages) needs PP >= {need}, got PP {a.pp}; raise PP or "
                "drop the virtual pipeline flag"]
    return []


@_rule("sequence-parallel", f"{_ARGS} L1433-1440; megatron/core/tensor_parallel/mappings.py::"
                            "_split_along_first_dim L72-74")
def _sequence_parallel(a: _Args) -> list[str]:
    """*scaleplan*: SP at TP 1 is switched off by Megatron (the launch would differ from the plan).
    Megatron: under SP the [seq/CP, batch, hidden] activations are split along seq by TP."""
    if not a.on("--sequence-parallel"):
        return []
    if a.tp == 1:
        return ["--sequence-parallel at TP 1 is turned off by Megatron; drop it or raise TP"]
    seq = a.num("--seq-length")
    if seq is not None and (seq // max(a.cp, 1)) % a.tp:
        return [f"seq/CP = {seq // max(a.cp, 1)} is not divisible by TP {a.tp} under sequence parallelism; change "
                "the sequence length or TP"]
    return []


# ---------------------------------------------------------------------------------- sharding and overlap
@_rule("overlap-param-gather", f"{_ARGS} L1024-1029")
def _overlap_param_gather(a: _Args) -> list[str]:
    """--overlap-param-gather needs the distributed optimizer (or Megatron FSDP, or dist_muon) and
    --overlap-grad-reduce."""
    if not a.on("--overlap-param-gather"):
        return []
    out = []
    if not (a.on("--use-distributed-optimizer") or a.on("--use-megatron-fsdp") or a.text("--optimizer") == "dist_muon"):
        out.append("--overlap-param-gather needs --use-distributed-optimizer; add it or drop the overlap flag")
    if not a.on("--overlap-grad-reduce"):
        out.append("--overlap-param-gather needs --overlap-grad-reduce; add it")
    return out


@_rule("torch-fsdp2", f"{_ARGS} L1031-1049")
def _torch_fsdp2(a: _Args) -> list[str]:
    """--use-torch-fsdp2: PP 1, no distributed optimizer, no gradient-accumulation fusion, torch_dist or
    torch_dcp checkpoints, untied embeddings, no fp16, CUDA_DEVICE_MAX_CONNECTIONS not 1."""
    if not a.on("--use-torch-fsdp2"):
        return []
    env_one = a.env is not None and str(a.env.get("CUDA_DEVICE_MAX_CONNECTIONS")) == "1"
    broken = [(a.pp != 1, f"torch FSDP2 rules out PP {a.pp}; use PP 1 or the distributed optimizer"),
              (a.on("--use-distributed-optimizer"), "torch FSDP2 rules out --use-distributed-optimizer; drop one"),
              (not a.on("--no-gradient-accumulation-fusion"),
               "torch FSDP2 needs --no-gradient-accumulation-fusion; add it"),
              (a.text("--ckpt-format", "torch_dist") not in ("torch_dist", "torch_dcp"),
               "torch FSDP2 needs --ckpt-format torch_dist or torch_dcp; set it"),
              (not a.on("--untie-embeddings-and-output-weights"),
               "torch FSDP2 needs --untie-embeddings-and-output-weights; add it"),
              (a.on("--fp16"), "torch FSDP2 does not support --fp16; use --bf16"),
              (env_one, "torch FSDP2 refuses CUDA_DEVICE_MAX_CONNECTIONS=1; unset it in the launch script")]
    return [msg for bad, msg in broken if bad]


@_rule("cuda-device-max-connections", f"{_ARGS} L1453-1480")
def _max_connections(a: _Args) -> list[str]:
    """TP > 1 or CP > 1 without FSDP needs CUDA_DEVICE_MAX_CONNECTIONS=1 (before Blackwell)."""
    if a.env is None or a.fsdp or (a.tp <= 1 and a.cp <= 1) or str(a.env.get("CUDA_DEVICE_MAX_CONNECTIONS")) == "1":
        return []
    return [f"TP {a.tp} / CP {a.cp} need CUDA_DEVICE_MAX_CONNECTIONS=1 on pre-Blackwell GPUs; export it"]


@_rule("precision", f"{_ARGS} L1195-1206")
def _precision(a: _Args) -> list[str]:
    """--bf16 and --fp16 exclude each other."""
    return ["--bf16 and --fp16 are both given; keep one"] if a.on("--bf16") and a.on("--fp16") else []


# ---------------------------------------------------------------------------------- model shape
@_rule("required", f"{_ARGS} L1314-1317")
def _required(a: _Args) -> list[str]:
    """num_layers, hidden_size, num_attention_heads and max_position_embeddings must be given."""
    missing = [f for f in ("--num-layers", "--hidden-size", "--num-attention-heads", "--max-position-embeddings")
               if a.num(f) is None]
    return [f"{', '.join(missing)} missing; add them"] if missing else []


@_rule("sequence-length", f"{_ARGS} L1335-1356")
def _sequence_length(a: _Args) -> list[str]:
    """max_position_embeddings >= seq_length; CP > 1 needs seq_length % (2*CP) == 0."""
    seq, pos, out = a.num("--seq-length"), a.num("--max-position-embeddings"), []
    if seq is not None and pos is not None and pos < seq:
        out.append(f"--max-position-embeddings {pos} < --seq-length {seq}; raise it to at least {seq}")
    if seq is not None and a.cp > 1 and seq % (2 * a.cp):
        out.append(f"--seq-length {seq} is not a multiple of 2*CP = {2 * a.cp}; change CP or the length")
    return out


@_rule("attention-heads", f"{_ARGS} L1331-1332; megatron/core/transformer/transformer_config.py::"
                          "TransformerConfig.__post_init__ L1446-1468; megatron/core/transformer/attention.py::"
                          "Attention.__init__ L353-360; megatron/training/argument_utils.py::"
                          "core_transformer_config_from_args L330-333")
def _heads(a: _Args) -> list[str]:
    """hidden % heads without --kv-channels; heads % TP; query groups and TP divide one another; heads %
    groups (per-rank heads when groups < TP); *scaleplan*: --num-query-groups without
    --group-query-attention is ignored (groups = heads)."""
    heads, hidden, out = a.num("--num-attention-heads"), a.num("--hidden-size"), []
    if not heads or heads <= 0:
        return []
    if a.num("--kv-channels") is None and hidden is not None and hidden % heads:
        out.append(f"hidden size {hidden} is not divisible by {heads} heads; set --kv-channels or change the heads")
    if heads % a.tp:
        out.append(f"{heads} attention heads are not divisible by TP {a.tp}; choose a TP dividing the heads")
    groups = a.num("--num-query-groups")
    if groups is not None and not a.on("--group-query-attention"):
        out.append("--num-query-groups is ignored without --group-query-attention; add the switch")
    elif groups is not None and a.on("--group-query-attention"):
        if groups <= 0 or (groups % a.tp and a.tp % groups):
            out.append(f"{groups} query groups and TP {a.tp}: one must divide the other; change TP or the groups")
        elif heads % groups:
            out.append(f"{heads} heads are not divisible by {groups} query groups; change the groups")
    return out


@_rule("ffn-tp", "megatron/core/tensor_parallel/layers.py::ColumnParallelLinear.__init__ L1038, "
                 "RowParallelLinear.__init__ L1408")
def _ffn_tp(a: _Args) -> list[str]:
    """The MLP width is split over TP ranks (divide(): exact)."""
    ffn = a.num("--ffn-hidden-size")
    return [f"--ffn-hidden-size {ffn} is not divisible by TP {a.tp}; choose a TP dividing it"] \
        if ffn is not None and ffn % a.tp else []


@_rule("recompute", f"{_ARGS} L607-609, L1425-1428; megatron/core/transformer/transformer_config.py::"
                    "TransformerConfig.__post_init__ L1908-1930")
def _recompute(a: _Args) -> list[str]:
    """selective (or --recompute-activations): no method, no layer count; full: method and layer count."""
    gran = "selective" if a.on("--recompute-activations") else a.text("--recompute-granularity")
    if gran == "selective" and (a.has("--recompute-method") or a.has("--recompute-num-layers")):
        return ["selective recompute takes no --recompute-method / --recompute-num-layers; drop them"]
    if gran == "full" and not (a.has("--recompute-method") and a.has("--recompute-num-layers")):
        return ["full recompute needs --recompute-method and --recompute-num-layers; add them"]
    return []


@_rule("mup", "megatron/core/transformer/transformer_config.py::TransformerConfig.__post_init__ L2530-2534")
def _mup(a: _Args) -> list[str]:
    """--mup-base-hidden-size > 0; *scaleplan*: the --mup-* values are read only under --use-mup."""
    given = [f for f in _MUP_FLAGS if a.has(f)]
    if given and not a.on("--use-mup"):
        return [f"{', '.join(given)} do nothing without --use-mup; add it or drop them"]
    base = a.num("--mup-base-hidden-size")
    if a.on("--use-mup") and base is not None and base <= 0:
        return [f"--mup-base-hidden-size must be positive, got {base}; set the proxy's width"]
    return []


# ---------------------------------------------------------------------------------- schedule and operations
@_rule("iteration-schedule", f"{_ARGS} L1276-1299; megatron/training/training.py::get_optimizer_param_scheduler "
                             "L2558-2586")
def _iteration_schedule(a: _Args) -> list[str]:
    """--train-iters (or --train-samples) is required; iteration-based training rules out the sample
    flags; --lr-warmup-fraction excludes --lr-warmup-iters."""
    iters, samples = a.num("--train-iters"), a.num("--train-samples")
    if not iters and not samples:
        return ["neither --train-iters nor --train-samples is given; add --train-iters"]
    out = []
    if iters:
        out += [f"{f} mixes sample- and iteration-based training; drop it" for f in
                ("--train-samples", "--lr-decay-samples") if a.has(f)]
        if a.num("--lr-warmup-samples", 0):
            out.append("--lr-warmup-samples with --train-iters; use --lr-warmup-iters")
        if a.has("--lr-warmup-fraction") and a.num("--lr-warmup-iters", 0):
            out.append("--lr-warmup-fraction and --lr-warmup-iters are both given; keep one")
    return out


@_rule("lr-schedule", "megatron/core/optimizer_param_scheduler.py::OptimizerParamScheduler.__init__ L150-164; "
                      f"{_ARGS} L1359-1360")
def _lr_schedule(a: _Args) -> list[str]:
    """0 <= min_lr <= lr; decay iters (default train iters) > 0 and > warmup iters; WSD needs
    --lr-wsd-decay-iters."""
    out = []
    lr, min_lr = a.num("--lr", None, float), a.num("--min-lr", 0.0, float)
    if lr is not None and not 0.0 <= min_lr <= lr:
        out.append(f"--min-lr {min_lr:g} must lie in [0, --lr {lr:g}]; lower it")
    decay, warmup = a.num("--lr-decay-iters", a.num("--train-iters")), a.num("--lr-warmup-iters", 0)
    if decay is not None and decay <= 0:
        out.append(f"--lr-decay-iters {decay} must be positive; set it to the run's length")
    elif decay is not None and warmup >= decay:
        out.append(f"--lr-warmup-iters {warmup} must be below --lr-decay-iters {decay}; shorten the warmup")
    if a.text("--lr-decay-style") == "WSD" and not a.has("--lr-wsd-decay-iters") \
            and not a.has("--lr-wsd-decay-samples"):
        out.append("--lr-decay-style WSD needs --lr-wsd-decay-iters; add it")
    return out


@_rule("checkpointing", f"{_ARGS} L1361-1366")
def _checkpointing(a: _Args) -> list[str]:
    """--save needs --save-interval > 0; --save-retain-interval must be a multiple of it."""
    if not a.has("--save"):
        return []
    every = a.num("--save-interval")
    if every is None or every <= 0:
        return ["--save needs a positive --save-interval; set the plan's checkpoint interval"]
    keep = a.num("--save-retain-interval")
    if keep is not None and (keep <= 0 or keep % every):
        return [f"--save-retain-interval {keep} is not a positive multiple of --save-interval {every}; fix it"]
    return []


def split_weights(text: str) -> list[float] | None:
    """Megatron's reading of --split: up to three non-negative numbers (None when malformed)."""
    found = [float(x) for x in re.findall(r"[.0-9]+", text) if x.strip(".")]
    return found + [0.0] * (3 - len(found)) if 0 < len(found) <= 3 and sum(found) > 0 else None


@_rule("validation", "megatron/training/training.py::get_train_valid_test_num_samples L5436, "
                     "build_train_valid_test_data_loaders L5539; megatron/core/datasets/"
                     f"blended_megatron_dataset_config.py::parse_and_normalize_split L155-172; {_ARGS} L1679-1682")
def _validation(a: _Args) -> list[str]:
    """--eval-interval > 0 (the sample count divides train iters by it); one data source; --split is up
    to three non-negative weights; *scaleplan*: --eval-iters > 0 and a validation share (Megatron
    validates only then, and silently never otherwise: the plan's predicted loss would go unchecked)."""
    out = []
    if not a.on("--full-validation") and not a.on("--skip-train"):
        every = a.num("--eval-interval")
        if every is None or every <= 0:
            out.append("--eval-interval must be a positive number of steps; set the plan's eval interval")
    if a.num("--eval-iters", 100) <= 0 and not a.on("--full-validation"):
        out.append("--eval-iters 0 never measures the validation loss; set the plan's eval iters")
    per_split = any(a.has(f) for f in ("--train-data-path", "--valid-data-path", "--test-data-path"))
    sources = a.on("--mock-data") + a.has("--data-path") + per_split
    if sources > 1:
        out.append("give one data source (--mock-data, --data-path or the per-split paths); drop the others")
    split = a.text("--split")
    if split is not None and not per_split:
        weights = split_weights(split)
        if weights is None:
            out.append(f"--split {split!r} is not up to three non-negative weights; write e.g. 99,1,0")
        elif weights[1] <= 0:
            out.append(f"--split {split!r} has no validation share; give it one (e.g. 99,1,0)")
    return out


@_rule("logging", "megatron/training/training.py::training_log L3539 (iteration % log_interval), L3376; "
                  f"megatron/training/global_vars.py::_set_tensorboard_writer L240-246; {_ARGS} L1369-1370")
def _logging(a: _Args) -> list[str]:
    """Log intervals are positive (modulo divisors); the memory log interval is a multiple of the log
    interval; *scaleplan*: TensorBoard flags without --tensorboard-dir log nothing."""
    out = []
    every = a.num("--log-interval", 100)
    for flag, v in (("--log-interval", every), ("--tensorboard-log-interval", a.num("--tensorboard-log-interval", 1))):
        if v <= 0:
            out.append(f"{flag} must be positive, got {v}; set the plan's log interval")
    mem = a.num("--log-memory-interval")
    if mem is not None and every > 0 and mem % every:
        out.append(f"--log-memory-interval {mem} is not a multiple of --log-interval {every}; fix it")
    orphans = [f for f in _TENSORBOARD_FLAGS if a.on(f)]
    if orphans and not a.has("--tensorboard-dir"):
        out.append(f"{', '.join(orphans)} need --tensorboard-dir; add it")
    return out


@_rule("loss-checks", "pretrain_gpt.py::loss_func L261-290")
def _loss_checks(a: _Args) -> list[str]:
    """*scaleplan*: keep Megatron's NaN/Inf loss check (on by default; only the --no- switch exists)."""
    off = a.on("--no-check-for-nan-in-loss-and-grad")
    return ["--no-check-for-nan-in-loss-and-grad lets a NaN loss train on; drop it"] if off else []


__all__ = ["MEGATRON_COMMIT", "RULES", "Rule", "megatron_arg_problems", "split_weights"]
