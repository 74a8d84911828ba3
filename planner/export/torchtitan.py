"""torchtitan 0.3.0 export: a Python config module (our own model builder) plus ``run.sh``.

torchtitan 0.3.0 has no TOML job file: ``torchtitan/config/manager.py`` ``ConfigManager.parse_args``
imports ``--module`` and calls its ``--config`` function, which returns a ``Trainer.Config``
(``torchtitan/trainer.py``), then applies ``<section>.<field>`` CLI overrides with tyro. Model
dimensions cannot come from the CLI (``Trainer.Config.model_spec`` is suppressed), so the module
holds the whole config and run.sh repeats the numbers (layout, batch, schedule, checkpoint
interval) as overrides a reader can see and edit. Names come from the 0.3.0 wheel's public config
classes (:data:`TORCHTITAN_NAMES`); tests parse the export with the wheel's own ``ConfigManager``.

Plan field -> torchtitan (file, class/function of the 0.3.0 wheel):

* Layout (``config/configs.py`` ``ParallelismConfig``): TP, PP, CP degrees; DP is
  ``data_parallel_shard_degree`` x ``data_parallel_replicate_degree`` (shard = the plan's shard
  size: FSDP2, or HSDP with a shard group; replicate only = DDP for ZeRO-0). torchtitan has no
  ZeRO-1/2: those plans get FSDP2 full sharding (less memory than planned, more all-gathers).
  ``enable_sequence_parallel`` is the plan's flag (torchtitan's default is True). PP: schedule
  ``1F1B`` (``Interleaved1F1B`` with vpp > 1), ``pipeline_parallel_layers_per_stage`` = layers /
  (PP x vpp) with no layer credit for embedding/output (``distributed/pipeline_parallel.py``
  ``_get_pipeline_metadata``: even stages, as Megatron and the memory model assume). CP uses the
  ``ptrr`` load balancer, the one ``ParallelismConfig`` names for FlexAttention.
* Batch (``TrainingConfig``; ``Trainer.__init__`` "verify batch sizes"): gradient accumulation is
  ``global_batch_size // (local_batch_size * DP)``. Without PP ``local_batch_size`` is the plan's
  micro-batch; with PP it is micro-batch x grad_accum, split into ``grad_accum`` pipeline
  microbatches of ``pipeline_parallel_microbatch_size`` = micro-batch (Megatron's schedule), and
  ``disable_cuda_graphs`` is set (``Trainer.Config._validate_cuda_graphs`` refuses PP otherwise).
* Recompute (``distributed/activation_checkpoint.py`` ``ActivationCheckpointingConfig``):
  ``none`` -> ``activation_checkpoint=None`` (subcommand ``none``; the Trainer default is
  selective), ``selective`` -> ``SelectiveAC.Config`` (op-level SAC: it recomputes more than
  Megatron's core-attention recompute), ``full`` -> ``FullAC.Config``.
* Schedule (``components/optimizer/lr_scheduler.py`` ``LRSchedulersContainer.Config``,
  ``linear_warmup_stable_decay``): ``warmup_steps``, then decay over the remaining steps (cosine)
  or over the last ``decay_ratio`` (WSD: linear, cosine, sqrt = Megatron's minus_sqrt; no
  exponential) to ``min_lr_factor`` x LR. Megatron's cosine ends at ``lr_decay_iters``; a plan that
  stops the decay earlier (LLM-jp) decays over all steps here (noted in the module).
* Checkpoints (``components/checkpointer/base.py`` ``BaseCheckpointManager.Config``): ``enable``
  (off by default), ``folder``, ``interval`` = the plan's ``operations.save_interval``; logging
  every ``operations.log_interval`` steps (``components/metrics.py`` ``MetricsProcessor.Config``).
* AdamW groups (``components/optimizer/optimizer.py`` ``ParamGroupConfig``; regex on the FQN, first
  match wins): norms and biases without weight decay (Megatron's 1-D rule), the rest at the plan's LR.
* Architecture (planner/export/architecture.py): LayerNorm (``LayerNorm.Config``) and biases
  (``Linear.Config.bias`` on wqkv or wq/wkv, wo, w1, w2, w3) are written; a GELU MLP and partial
  rotary are refused; a z-loss (``CrossEntropyLoss`` has none) is written as a warning.

Continual pretraining (``training.continue_from``, planner/plan/continuation.py): with a fresh
optimizer the checkpoint is ``checkpoint.initial_load_path`` with ``initial_load_model_only=True``
(``BaseCheckpointManager.Config``: used only while the run's own folder is empty, so a relaunch
resumes the run; weights only, step 0: the plan's schedule as is); it must be a torchtitan (DCP)
checkpoint at an absolute path (``Config.__post_init__``). With the optimizer kept it is refused:
``initial_load_model_only=False`` restores the step, but the LR lambda
(``components/optimizer/lr_scheduler.py`` ``linear_warmup_stable_decay``) counts warmup from step
0 of that counter with no start value, so a schedule that begins at the checkpoint's step cannot
be placed there (Megatron-LM's export can: planner/export/megatron_phases.py ``continued_run``).

μP: torchtitan 0.3.0 has none. ``models/common/decoder.py`` ``Decoder.forward`` applies no
embedding or logit multiplier and ``models/common/attention.py`` ``GQAttention.__init__`` fixes
the softmax scale at ``head_dim ** -0.5``. Per-group LR, weight decay, eps (``ParamGroupConfig``)
and init (``param_init``) exist, so μP is written only on request (``allow_approximate_mup``) as
its standard-parameterization equivalent: each forward multiplier c is folded into its weight
(V = c W trains under AdamW like W with init c*std, LR c*lr, eps eps/c, weight decay wd/c; the
attention factor attn_mult/sqrt(d_head) goes into a separate query projection). What stays
different is gradient clipping, which sees the folded gradients (dL/dV = dL/dW / c). Otherwise
a μP plan is refused with these numbers; Megatron-LM's ``--use-mup`` export is exact.
``OptimizersContainer._build_param_groups`` raises when a pattern matches nothing in a pipeline
stage, so μP needs PP 1, and a tied embedding cannot carry two multipliers: both are refused.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from planner.errors import UserError
from planner.export.architecture import caveat_lines, torchtitan_unsupported, z_loss_warning
from planner.export.common import doc_line, header_lines, one_line, py_num, q, write_export
from planner.export.torchtitan_builder import MODEL_BUILDER
from planner.plan import Plan

TORCHTITAN_VERSION = "0.3.0"

#: Every import of the generated module (verified against torchtitan-0.3.0-py3-none-any.whl).
TORCHTITAN_NAMES: dict[str, list[str]] = {
    "torchtitan.components.checkpoint": ["CheckpointManager"],
    "torchtitan.components.loss": ["ChunkedLossWrapper", "CrossEntropyLoss"],
    "torchtitan.components.metrics": ["MetricsProcessor"],
    "torchtitan.components.optimizer": ["LRSchedulersContainer", "OptimizersContainer", "ParamGroupConfig"],
    "torchtitan.config": ["ParallelismConfig", "TrainingConfig"],
    "torchtitan.distributed.activation_checkpoint": ["FullAC", "SelectiveAC"],
    "torchtitan.distributed.pipeline_parallel": ["pipeline_llm"],
    "torchtitan.hf_datasets.text_datasets": ["HuggingFaceTextDataLoader"],
    "torchtitan.models.common": ["ComplexRoPE", "Embedding", "LayerNorm", "Linear", "RMSNorm"],
    "torchtitan.models.common.config_utils": ["get_attention_config", "make_ffn_config", "make_gqa_config",
                                              "decoder_vocab_size"],
    "torchtitan.models.common.param_init": ["skip_param_init"],
    "torchtitan.models.llama3": ["Llama3Model", "Llama3TransformerBlock", "Llama3StateDictAdapter",
                                 "parallelize_llama"],
    "torchtitan.protocols.model_spec": ["ModelSpec"],
    "torchtitan.trainer": ["Trainer"],
}
#: CLI overrides run.sh passes (tyro paths into Trainer.Config), verified against the wheel's dataclasses.
TORCHTITAN_CLI_FIELDS: dict[str, list[str]] = {
    "training": ["local_batch_size", "global_batch_size", "seq_len", "steps", "max_norm"],
    "parallelism": ["data_parallel_shard_degree", "data_parallel_replicate_degree", "tensor_parallel_degree",
                    "pipeline_parallel_degree", "context_parallel_degree"],
    "lr_scheduler": ["warmup_steps", "decay_ratio", "decay_type", "min_lr_factor"],
    "checkpoint": ["interval"],
}

MODULE_NAME = "scaleplan_model"
CONFIG_NAME = "scaleplan_plan"
#: AdamW groups by FQN regex, in order (first match wins; the catch-all last).
PATTERNS = {"embedding": r"(^|\.)tok_embeddings\.weight$", "readout": r"(^|\.)lm_head\.weight$",
            "query": r"\.wq\.weight$", "norms": r"(norm\.weight|\.bias)$", "hidden": r".*"}
_WSD_DECAY = {"linear": "linear", "cosine": "cosine", "minus_sqrt": "sqrt"}


# ---------------------------------------------------------------------------------- plan -> sections
def sections(plan: Plan) -> dict[str, dict[str, Any]]:
    """Trainer.Config section -> field -> value for the plan's layout, batch, schedule and cadence."""
    t, lay, s = plan.training, plan.layout, plan.shape
    shard = lay.shard_size
    par = {"data_parallel_shard_degree": shard, "data_parallel_replicate_degree": lay.dp // shard,
           "tensor_parallel_degree": lay.tp, "pipeline_parallel_degree": lay.pp,
           "context_parallel_degree": lay.cp, "enable_sequence_parallel": lay.sequence_parallel}
    train = {"local_batch_size": lay.micro_batch, "global_batch_size": t.global_batch, "seq_len": t.seq_len,
             "steps": t.train_iters, "max_norm": t.clip_grad}
    if lay.cp > 1:  # configs.py: "ptrr" is the load balancer for FlexAttention (the exported attention)
        par["context_parallel_load_balancer"] = "ptrr"
    if lay.pp > 1:
        train["local_batch_size"] = lay.micro_batch * lay.grad_accum
        train["disable_cuda_graphs"] = True
        par.update(pipeline_parallel_schedule="Interleaved1F1B" if lay.vpp > 1 else "1F1B",
                   pipeline_parallel_layers_per_stage=s.n_layers // (lay.pp * lay.vpp),
                   pipeline_parallel_first_stage_less_layers=0, pipeline_parallel_last_stage_less_layers=0,
                   pipeline_parallel_microbatch_size=lay.micro_batch)
    sched: dict[str, Any] = {"warmup_steps": t.warmup_iters, "decay_type": "cosine", "min_lr_factor": t.min_lr / t.lr}
    if t.schedule == "wsd":
        style = t.wsd_decay_style or "linear"
        if style not in _WSD_DECAY:
            raise UserError(f"torchtitan {TORCHTITAN_VERSION} cannot decay the WSD schedule {style!r} (its decay_type "
                            "is linear, sqrt or cosine); re-plan with another WSD decay or export to Megatron")
        sched.update(decay_type=_WSD_DECAY[style], decay_ratio=t.wsd_decay_iters / t.train_iters)
    ops = getattr(plan, "operations", None)
    save = ops.save_interval if ops else int((t.megatron_extra or {}).get("save_interval", 1000))
    out = {"training": train, "parallelism": par, "lr_scheduler": sched, "checkpoint": {"interval": save}}
    if ops:
        out["metrics"] = {"log_freq": ops.log_interval}
    return out


def _check_layout(plan: Plan) -> None:
    """What torchtitan 0.3.0 refuses at start-up, refused here with the fix."""
    s, lay = plan.shape, plan.layout
    errs = plan.validate_layout()
    if s.n_kv_heads % lay.tp:  # models/common/decoder.py Decoder.Config.update_from_config
        errs.append(f"TP {lay.tp} does not divide the {s.n_kv_heads} kv heads (torchtitan needs that)")
    if s.tied and lay.pp > 1:  # same function: NotImplementedError
        errs.append("torchtitan does not tie embeddings under pipeline parallelism")
    if plan.phases:
        errs.append(f"the plan has {len(plan.phases)} schedule phases; torchtitan runs one schedule per job")
    errs += torchtitan_unsupported(s)  # GELU MLP, partial rotary (planner/export/architecture.py)
    errs += _continuation_problems(plan)
    if errs:
        raise UserError(f"torchtitan {TORCHTITAN_VERSION} cannot run this plan: " + "; ".join(errs)
                        + "; re-plan with other --tp/--pp/--gpus, or export to Megatron")


# ---------------------------------------------------------------------------------- continual pretraining
#: The checkpoint placeholder of a continued plan that names none (absolute, as torchtitan requires).
CONTINUE_PLACEHOLDER = "/path/to/torchtitan/checkpoint/step-N"


def _continuation_problems(plan: Plan) -> list[str]:
    """Why torchtitan 0.3.0 cannot continue this plan from its checkpoint (module docstring); [] if it can."""
    cont = plan.training.continue_from
    if not cont:
        return []
    if cont.get("optimizer", "kept") == "kept":
        return [f"the run continues from iteration {cont['iteration']:,} with its optimizer kept: torchtitan's LR "
                "lambda (components/optimizer/lr_scheduler.py linear_warmup_stable_decay) counts warmup from step 0 "
                "of the restored counter and has no start value, so the plan's schedule cannot begin at that step; "
                "plan with --fresh-optimizer (weights only)"]
    path = cont.get("checkpoint")
    if path and not path.startswith("/"):
        return [f"checkpoint.initial_load_path must be absolute (BaseCheckpointManager.Config.__post_init__), got "
                f"{path!r:.80}"]
    return []


def _continuation_kwargs(plan: Plan) -> str:
    """Extra ``CheckpointManager.Config`` arguments of a continued plan ('' from scratch)."""
    cont = plan.training.continue_from
    if not cont:
        return ""
    path = cont.get("checkpoint") or CONTINUE_PLACEHOLDER
    return f", initial_load_path={path!r}, initial_load_model_only=True"


# ---------------------------------------------------------------------------------- μP
def _fold(lr: float, std: float, wd: float, eps: float, c: float) -> dict[str, float]:
    """AdamW settings that train V = c W as μP trains W with forward multiplier c (module docstring)."""
    return {"lr": lr * c, "weight_decay": wd / c, "eps": eps / c, "init_std": std * c, "multiplier": c}


def mup_groups(plan: Plan) -> dict[str, dict[str, float]]:
    """Group -> the folded AdamW lr, weight_decay, eps and init std written for a μP plan (and its c)."""
    hp = plan.hparams
    c_q = hp.attention.scale * math.sqrt(plan.shape.head_dim)  # μP's scale / torchtitan's 1/sqrt(d_head)
    q_std = 0.0 if hp.query_zero_init else hp.hidden.init_std
    return {"embedding": _fold(hp.embedding.lr, hp.embedding.init_std, hp.embedding.weight_decay, hp.eps,
                               hp.embedding.multiplier),
            "readout": _fold(hp.readout.lr, hp.readout.init_std, hp.readout.weight_decay, hp.eps,
                             hp.readout.multiplier),
            "query": _fold(hp.hidden.lr, q_std, hp.hidden.weight_decay, hp.eps, c_q),
            "norms": _fold(hp.norms.lr, 1.0, 0.0, hp.eps, 1.0),
            "hidden": _fold(hp.hidden.lr, hp.hidden.init_std, hp.hidden.weight_decay, hp.eps, 1.0)}


def mup_lost(plan: Plan) -> list[str]:
    """What a standard-parameterization torchtitan run lacks of this μP plan, with numbers."""
    hp, dh = plan.hparams, plan.shape.head_dim
    return [f"hidden-matrix LR {hp.hidden.lr:.4g} vs embedding/readout LR {hp.embedding.lr:.4g} "
            f"(ratio 1/m_d = {hp.hidden.lr / hp.embedding.lr:.4g} at width {hp.d_model}, base {hp.base_width})",
            f"readout multiplier alpha_out/m_d = {hp.readout.multiplier:.4g} on the logits",
            f"input multiplier alpha_in = {hp.embedding.multiplier:.4g}",
            f"attention scale attn_mult/d_head = {hp.attention.scale:.4g} vs torchtitan's 1/sqrt(d_head) = "
            f"{dh ** -0.5:.4g} (x{hp.attention.scale * math.sqrt(dh):.4g})",
            f"init std hidden {hp.hidden.init_std:.4g}, embedding {hp.embedding.init_std:.4g}, readout "
            f"{hp.readout.init_std:.4g}" + (", query 0" if hp.query_zero_init else "")]


def mup_residual(plan: Plan) -> list[str]:
    """What stays different after folding (module docstring)."""
    g, t = mup_groups(plan), plan.training
    out = [f"gradient clipping (max_norm {t.clip_grad:g}) sees the folded gradients: readout x"
           f"{1 / g['readout']['multiplier']:.4g}, embedding x{1 / g['embedding']['multiplier']:.4g}, query x"
           f"{1 / g['query']['multiplier']:.4g} in the global norm"]
    if t.decoupled_lr and not math.isclose(t.min_lr / t.lr, (t.decoupled_min_lr or 0.0) / t.decoupled_lr):
        out.append(f"one LR schedule for all groups: embedding/readout decay to {t.min_lr / t.lr:.4g} x LR, "
                   f"not {(t.decoupled_min_lr or 0.0) / t.decoupled_lr:.4g}")
    return out


def _check_mup(plan: Plan, allow_approximate_mup: bool) -> None:
    """Refuse μP unless the folded approximation is accepted and torchtitan can hold it."""
    if not plan.is_mup:
        return
    lay, hp = plan.layout, plan.hparams
    blockers = []
    if lay.pp > 1:
        blockers.append(f"pipeline parallelism (PP {lay.pp}): torchtitan builds the AdamW groups per stage and "
                        "fails when the embedding or output-layer group is empty there (OptimizersContainer."
                        "_build_param_groups); re-plan with --pp 1")
    if plan.shape.tied:
        blockers.append(f"tied embeddings: one matrix cannot carry both alpha_in = {hp.embedding.multiplier:.4g} and "
                        f"alpha_out/m_d = {hp.readout.multiplier:.4g}; plan untied embeddings")
    if blockers:
        raise UserError(f"torchtitan {TORCHTITAN_VERSION} cannot express this μP plan even approximately: "
                        + "; ".join(blockers) + "; or export to Megatron-LM (--use-mup, exact)")
    if not allow_approximate_mup:
        raise UserError(
            f"torchtitan {TORCHTITAN_VERSION} has no μP (no logit or embedding multiplier, attention fixed at "
            "1/sqrt(d_head)); this plan's μP needs " + "; ".join(mup_lost(plan)) + ". Export to Megatron-LM "
            "instead (`scaleplan export --trainer megatron`: --use-mup, exact), or pass --allow-approximate-mup "
            "to write the standard-parameterization equivalent (multipliers folded into init, LR, eps and weight "
            "decay), which differs in: " + "; ".join(mup_residual(plan)))


def _mup_doc(plan: Plan) -> list[str]:
    """The module docstring's μP paragraph: what μP prescribes, what is written, what differs."""
    hp = plan.hparams
    L = [f"APPROXIMATE μP (--allow-approximate-mup): width {hp.d_model}, base {hp.base_width}, m_d = {hp.m_d:.6g}.",
         "torchtitan has no μP; μP's values:"] + [f"  {x}" for x in mup_lost(plan)]
    L += ["are written as standard parameterization, each multiplier c folded into its weight (init c*std,",
          "LR c*lr, eps eps/c, weight decay wd/c); the checkpoint holds the folded weights:",
          f"  {'group':<10}{'c':>10}{'lr':>11}{'init std':>11}{'eps':>10}{'wd':>9}"]
    for name, g in mup_groups(plan).items():
        L.append(f"  {name:<10}{g['multiplier']:>10.4g}{g['lr']:>11.4g}{g['init_std']:>11.4g}{g['eps']:>10.3g}"
                 f"{g['weight_decay']:>9.3g}")
    return L + ["Still different from μP:"] + [f"  {x}" for x in mup_residual(plan)] + [
        "Exact μP: `scaleplan export --trainer megatron` (Megatron-LM --use-mup)."]


# ---------------------------------------------------------------------------------- the module
def _param_groups(plan: Plan) -> list[tuple[str, dict[str, Any]]]:
    """(FQN regex, AdamW kwargs), first match wins: μP's folded groups, else norms without decay."""
    t = plan.training
    if plan.is_mup:
        return [(PATTERNS[name], {"lr": g["lr"], "weight_decay": g["weight_decay"], "betas": tuple(t.betas),
                                  "eps": g["eps"]}) for name, g in mup_groups(plan).items()]
    base = {"betas": tuple(t.betas), "eps": t.eps}
    return [(PATTERNS["norms"], {"lr": t.lr, "weight_decay": 0.0, **base}),
            (PATTERNS["hidden"], {"lr": t.lr, "weight_decay": t.weight_decay, **base})]


def _init_stds(plan: Plan) -> dict[str, Any]:
    """The module's init constants: μP's folded per-group stds, else torchtitan's Llama 3 scheme."""
    t, s = plan.training, plan.shape
    if plan.is_mup:
        g = mup_groups(plan)
        return {"HIDDEN_STD": g["hidden"]["init_std"], "DEPTH_SCALED": False, "QUERY_STD": g["query"]["init_std"],
                "EMBEDDING_STD": g["embedding"]["init_std"], "OUTPUT_STD": g["readout"]["init_std"]}
    emb = t.embedding_init_std if t.embedding_init_std is not None else t.init_std
    return {"HIDDEN_STD": t.init_std, "DEPTH_SCALED": True, "QUERY_STD": None, "EMBEDDING_STD": emb,
            "OUTPUT_STD": emb if s.tied else s.d_model ** -0.5}


def _docstring(plan: Plan, command: str | None) -> list[str]:
    s, t, lay = plan.shape, plan.training, plan.layout
    L = [f'"""torchtitan {TORCHTITAN_VERSION} config for the planned model (generated; edit the TODOs).', ""]
    L += header_lines(plan, "scaleplan torchtitan export", command, comment="")
    L += ["",
          f"Shape: {s.n_layers} layers, d_model {s.d_model}, ffn {s.d_ffn}, heads {s.n_heads} ({s.n_kv_heads} kv, "
          f"head dim {s.head_dim}),",
          f"vocab {s.vocab_size} padded to {s.padded_vocab}{', tied' if s.tied else ''}, seq {t.seq_len}; "
          f"{s.total_params:,} parameters; {'LayerNorm' if s.norm == 'layernorm' else 'RMSNorm'}"
          + (", attention biases" if s.attn_bias else "") + (", FFN biases" if s.ffn_bias else "") + ".",
          f"Layout: {lay.describe()}.",
          "Sharding: " + ("DDP (ZeRO-0)." if lay.shard_size == 1 else f"FSDP2 over {lay.shard_size} ranks"
                          + (" (the plan's ZeRO-1/2 has no torchtitan equivalent; FSDP also shards parameters)."
                             if not lay.fsdp and lay.zero_stage < 3 else "."))]
    if plan.is_mup:
        L += _mup_doc(plan)
    else:
        L += ["Init: N(0, init_std), output projections (wo, w2, w3) N(0, init_std / sqrt(2 (layer + 1))) as",
              "torchtitan's Llama 3 (models/llama3/__init__.py _depth_init); embedding N(0, embedding std)."]
    z_warn = z_loss_warning(plan, f"torchtitan {TORCHTITAN_VERSION}", "its CrossEntropyLoss has no z-loss term")
    if z_warn:
        L.append(z_warn)
    L += caveat_lines(plan, "")
    if t.schedule == "cosine" and t.lr_decay_iters != t.train_iters:
        L.append(f"Note: the plan ends its decay at step {t.lr_decay_iters} (Megatron semantics); torchtitan "
                 "decays over all steps after warmup.")
    return [L[0]] + [doc_line(x) for x in L[1:]] + ['"""']




def _kwargs(d: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in d.items())


def _config_function(plan: Plan) -> list[str]:
    """The ``scaleplan_plan()`` function: model spec, optimizer groups, scheduler, batch, checkpointing."""
    sec, rec = sections(plan), plan.layout.recompute
    L = [f"def {CONFIG_NAME}() -> Trainer.Config:",
         f"    spec = ModelSpec(name='llama3', flavor={('scaleplan_' + plan.plan_hash[:12])!r}, model=_model(),",
         "                     parallelize_fn=parallelize_llama, pipelining_fn=pipeline_llm,",
         "                     post_optimizer_build_fn=None, state_dict_adapter=Llama3StateDictAdapter)",
         "    groups = ["]
    for pattern, kw in _param_groups(plan):
        L.append(f"        ParamGroupConfig(pattern={pattern!r}, optimizer_name='AdamW', optimizer_kwargs={kw!r}),")
    ac = {"none": "None", "selective": "SelectiveAC.Config()", "full": "FullAC.Config()"}[rec]
    extra = [f"        metrics=MetricsProcessor.Config({_kwargs(sec['metrics'])}),"] if "metrics" in sec else []
    return L + [
        "    ]",
        "    return Trainer.Config(",
        "        model_spec=spec, hf_assets_path=HF_ASSETS_PATH,",
        "        loss=ChunkedLossWrapper.Config(loss_fn=CrossEntropyLoss.Config(global_vocab_size=decoder_vocab_size(spec))),",
        "        optimizer=OptimizersContainer.Config(param_groups=groups),",
        f"        lr_scheduler=LRSchedulersContainer.Config({_kwargs(sec['lr_scheduler'])}),",
        f"        training=TrainingConfig({_kwargs(sec['training'])}),",
        "        dataloader=HuggingFaceTextDataLoader.Config(dataset=DATASET),",
        f"        parallelism=ParallelismConfig({_kwargs(sec['parallelism'])}),",
        f"        checkpoint=CheckpointManager.Config(enable=True, folder=CHECKPOINT_DIR, "
        f"interval={py_num(sec['checkpoint']['interval'])}{_continuation_kwargs(plan)}),",
        f"        activation_checkpoint={ac},  # plan recompute: {rec}",
        *extra,
        "    )",
        "",
    ]


def config_module(plan: Plan, command: str | None = None) -> str:
    """The generated Python module: docstring, imports, the planned constants, builder, config function."""
    s, t, data = plan.shape, plan.training, plan.data or {}
    inits = _init_stds(plan)
    L = _docstring(plan, command) + ["from functools import partial", "", "import torch.nn as nn", ""]
    for mod, names in TORCHTITAN_NAMES.items():
        L.append(f"from {mod} import {', '.join(names)}")
    L += [
        "",
        f"HF_ASSETS_PATH = {str(data.get('tokenizer_model') or '/path/to/hf_assets')!r}"
        "  # TODO: folder with tokenizer.json (HF format)",
        f"DATASET = {str(data.get('dataset') or 'c4')!r}  # TODO: a dataset name torchtitan knows",
        f"CHECKPOINT_DIR = {str(data.get('checkpoint_dir') or '/path/to/checkpoints')!r}  # TODO",
        "",
        "N_LAYERS, DIM, FFN, N_HEADS, N_KV_HEADS, HEAD_DIM = "
        + ", ".join(map(py_num, (s.n_layers, s.d_model, s.d_ffn, s.n_heads, s.n_kv_heads, s.head_dim))),
        "VOCAB, SEQ_LEN, ROPE_THETA, NORM_EPS = " + ", ".join(map(py_num, (s.padded_vocab, t.seq_len, s.rope_theta,
                                                                          s.norm_eps))),
        f"TIED = {bool(s.tied)!r}",
        f"NORM, ATTN_BIAS, FFN_BIAS = {s.norm!r}, {bool(s.attn_bias)!r}, {bool(s.ffn_bias)!r}",
    ]
    L += [f"{k} = {v!r}" if isinstance(v, bool) or v is None else f"{k} = {py_num(v)}" for k, v in inits.items()]
    return "\n".join(L + ["", ""]) + "\n" + MODEL_BUILDER + "\n\n" + "\n".join(_config_function(plan))


# ---------------------------------------------------------------------------------- run.sh
def cli_overrides(plan: Plan) -> list[tuple[str, Any]]:
    """tyro overrides run.sh passes (:data:`TORCHTITAN_CLI_FIELDS`; the module holds the same values)."""
    sec = sections(plan)
    return [(f"--{name}.{f}", sec[name][f]) for name, fields in TORCHTITAN_CLI_FIELDS.items()
            for f in fields if f in sec[name]]


def run_script(plan: Plan, command: str | None = None) -> str:
    gpn, nnodes = plan.placement.gpus_per_node, plan.placement.n_nodes
    L = ["#!/usr/bin/env bash"] + header_lines(plan, f"torchtitan {TORCHTITAN_VERSION} launch", command) + [
        "# needs: pip install torchtitan==0.3.0 (and its torch); multi node: set NNODES/NODE_RANK/MASTER_ADDR.",
        "set -euo pipefail",
        "SCRIPT_DIR=\"$(cd \"$(dirname \"${BASH_SOURCE[0]}\")\" && pwd)\"",
        "export PYTHONPATH=\"$SCRIPT_DIR${PYTHONPATH:+:$PYTHONPATH}\"",
        f"GPUS_PER_NODE=\"${{GPUS_PER_NODE:-{py_num(gpn)}}}\"",
        f"NNODES=\"${{NNODES:-{py_num(nnodes)}}}\"",
        "NODE_RANK=\"${NODE_RANK:-${SLURM_NODEID:-0}}\"",
        "MASTER_ADDR=\"${MASTER_ADDR:-localhost}\"",
        "MASTER_PORT=\"${MASTER_PORT:-29500}\"",
        "ARGS=(",
        f"  --module {MODULE_NAME} --config {CONFIG_NAME}",
    ]
    z_warn = z_loss_warning(plan, f"torchtitan {TORCHTITAN_VERSION}", "its CrossEntropyLoss has no z-loss term")
    if z_warn:
        L.insert(-2, "# " + one_line(z_warn))
    if plan.is_mup:
        L.insert(-2, "# " + one_line("APPROXIMATE μP (--allow-approximate-mup): see the module docstring of "
                                     f"{MODULE_NAME}.py for the folded per-group values and what differs."))
    for flag, v in cli_overrides(plan):  # floats exact (repr): decay steps = round(steps x decay_ratio)
        L.append(f"  {flag} {q(py_num(v)) if isinstance(v, float) else q(v)}")
    L += [")",
          "exec ${TORCHRUN:-torchrun} --nproc_per_node \"$GPUS_PER_NODE\" --nnodes \"$NNODES\" --node_rank \"$NODE_RANK\" "
          "--master_addr \"$MASTER_ADDR\" --master_port \"$MASTER_PORT\" -m torchtitan.train \"${ARGS[@]}\" \"$@\"", ""]
    return "\n".join(L)


def render_torchtitan(plan: Plan, *, command: str | None = None, allow_approximate_mup: bool = False) -> dict[str, str]:
    """The config module (``scaleplan_model.py``) and ``run.sh``; a μP plan only with ``allow_approximate_mup``
    (module docstring), a layout torchtitan cannot run never."""
    _check_layout(plan)
    _check_mup(plan, allow_approximate_mup)
    return {f"{MODULE_NAME}.py": config_module(plan, command), "run.sh": run_script(plan, command)}


def export_torchtitan(plan: Plan, out_dir: str | Path, *, command: str | None = None,
                      allow_approximate_mup: bool = False) -> dict[str, Any]:
    """Write :func:`render_torchtitan`'s files into ``out_dir``."""
    files = render_torchtitan(plan, command=command, allow_approximate_mup=allow_approximate_mup)
    out = write_export("torchtitan", plan, out_dir, files)
    return {**out, "module": MODULE_NAME, "config": CONFIG_NAME}
