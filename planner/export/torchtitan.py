"""torchtitan 0.3.0 export: a Python config module (our own model builder) plus ``run.sh``.

torchtitan 0.3.0 selects a run with ``--module <module> --config <function>``; the function
returns a ``Trainer.Config`` and CLI flags override it afterwards (tyro). Model dimensions cannot
be set from the CLI (``Trainer.Config.model_spec`` is suppressed), so the planned shape lives in
the generated module (shared/notes/megatron-and-planning.md §6). The builder below is written from
the public config classes; it does not import torchtitan's private ``_build_*`` helpers.

Every name the generated module imports is listed in :data:`TORCHTITAN_NAMES` (module -> names);
tests check them against the 0.3.0 wheel when it is available.

Schedule mapping: torchtitan warms up for ``warmup_steps`` then decays over the remaining steps
(``decay_ratio`` None) or over the last ``decay_ratio`` fraction (WSD), down to
``min_lr_factor * lr``. Megatron's cosine ends at ``lr_decay_iters``; when a plan stops the decay
before the last step (LLM-jp's published recipe), torchtitan decays over all remaining steps
instead (a 0.2% difference in that recipe), noted in the module.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from planner.export.common import data_value, doc_line, header_lines, py_num, q, write_export
from planner.plan import Plan

TORCHTITAN_VERSION = "0.3.0"

#: Every import of the generated module (verified against torchtitan-0.3.0-py3-none-any.whl).
TORCHTITAN_NAMES: dict[str, list[str]] = {
    "torchtitan.components.checkpoint": ["CheckpointManager"],
    "torchtitan.components.loss": ["ChunkedLossWrapper", "CrossEntropyLoss"],
    "torchtitan.components.optimizer": ["LRSchedulersContainer", "OptimizersContainer", "ParamGroupConfig"],
    "torchtitan.config": ["ParallelismConfig", "TrainingConfig"],
    "torchtitan.distributed.activation_checkpoint": ["FullAC", "SelectiveAC"],
    "torchtitan.distributed.pipeline_parallel": ["pipeline_llm"],
    "torchtitan.hf_datasets.text_datasets": ["HuggingFaceTextDataLoader"],
    "torchtitan.models.common": ["ComplexRoPE", "Embedding", "Linear", "RMSNorm"],
    "torchtitan.models.common.config_utils": ["get_attention_config", "make_ffn_config", "make_gqa_config",
                                              "decoder_vocab_size"],
    "torchtitan.models.llama3": ["Llama3Model", "Llama3TransformerBlock", "Llama3StateDictAdapter",
                                 "parallelize_llama"],
    "torchtitan.protocols.model_spec": ["ModelSpec"],
    "torchtitan.trainer": ["Trainer"],
}
#: CLI overrides run.sh passes (tyro paths into Trainer.Config), verified against the wheel's dataclasses.
TORCHTITAN_CLI_FIELDS: dict[str, list[str]] = {
    "training": ["local_batch_size", "global_batch_size", "seq_len", "steps", "max_norm"],
    "parallelism": ["data_parallel_shard_degree", "data_parallel_replicate_degree", "tensor_parallel_degree",
                    "pipeline_parallel_degree", "context_parallel_degree", "enable_sequence_parallel"],
    "lr_scheduler": ["warmup_steps", "decay_ratio", "decay_type", "min_lr_factor"],
}

MODULE_NAME = "scaleplan_model"
CONFIG_NAME = "scaleplan_plan"


def _param_groups(plan: Plan) -> list[tuple[str, dict[str, Any]]]:
    """(FQN regex, AdamW kwargs) first match wins; μP gives per-group LR and weight decay."""
    t = plan.training
    base = {"betas": tuple(t.betas), "eps": t.eps}
    if plan.is_mup:
        hp = plan.hparams
        return [
            (r"^tok_embeddings\.", {"lr": hp.embedding.lr, "weight_decay": hp.embedding.weight_decay, **base}),
            (r"^lm_head\.", {"lr": hp.readout.lr, "weight_decay": hp.readout.weight_decay, **base}),
            (r"norm\.weight$", {"lr": hp.norms.lr, "weight_decay": 0.0, **base}),
            (r".*", {"lr": hp.hidden.lr, "weight_decay": hp.hidden.weight_decay, **base}),
        ]
    return [(r".*", {"lr": t.lr, "weight_decay": t.weight_decay, **base})]


def _init_stds(plan: Plan) -> tuple[float, float, float]:
    """(hidden, embedding, output) init std: μP's per-group values, else torchtitan's Llama defaults."""
    t, s = plan.training, plan.shape
    emb_std = t.embedding_init_std if t.embedding_init_std is not None else t.init_std
    if plan.is_mup:
        return t.init_std, emb_std, 0.0 if plan.hparams.readout_zero_init else emb_std
    return t.init_std, emb_std, s.d_model ** -0.5


def _schedule(plan: Plan) -> dict[str, Any]:
    """torchtitan's LR scheduler settings for the plan's schedule (module docstring)."""
    t = plan.training
    sched = {"warmup_steps": t.warmup_iters, "decay_type": "linear" if t.schedule == "wsd" else "cosine",
             "min_lr_factor": t.min_lr / t.lr}
    if t.schedule == "wsd":
        sched["decay_ratio"] = t.wsd_decay_iters / t.train_iters
    return sched


def _docstring(plan: Plan, command: str | None, out_std: float) -> list[str]:
    s, t = plan.shape, plan.training
    L = [f'"""torchtitan {TORCHTITAN_VERSION} config for the planned model (generated; edit the TODOs).', ""]
    L += [doc_line(line) for line in header_lines(plan, "scaleplan torchtitan export", command, comment="")]
    L += ["",
          f"Shape: {s.n_layers} layers, d_model {s.d_model}, ffn {s.d_ffn}, heads {s.n_heads} ({s.n_kv_heads} kv),",
          f"vocab {s.vocab_size} padded to {s.padded_vocab}, seq {t.seq_len}; {s.total_params:,} parameters.",
          "Init: hidden N(0, init_std) truncated at 3 std, residual output projections depth-scaled",
          "(std / sqrt(2 (layer + 1)), as torchtitan's Llama 3); embedding N(0, embedding std).",
          ]
    if plan.is_mup:
        hp = plan.hparams
        L += ["μP: per-group AdamW LR / weight decay via ParamGroupConfig (embedding, readout, norms: base LR;",
              "hidden: base LR / m_d), hidden init std / sqrt(m_d), readout init " +
              ("zero." if out_std == 0 else f"{out_std:g}."),
              f"NOT expressed (patch the model if you need exact μP): output multiplier alpha_out/m_d = "
              f"{hp.readout.multiplier:g} on the logits, attention scale attn_mult/d_head "
              f"= {hp.attention.scale:g} (torchtitan uses 1/sqrt(d_head)), zero-init query, input "
              f"multiplier {hp.embedding.multiplier:g}."]
    if t.lr_decay_iters != t.train_iters:
        L.append(f"Note: the plan ends its decay at step {t.lr_decay_iters} (Megatron semantics); torchtitan "
                 "decays over all steps after warmup.")
    return L + ['"""']


#: The model builder of the generated module (fixed text; it reads the constants above it).
_MODEL_BUILDER = """\
def _normal(std):
    if std == 0:
        return {'weight': nn.init.zeros_, 'bias': nn.init.zeros_}
    return {'weight': partial(nn.init.trunc_normal_, std=std, a=-3 * std, b=3 * std), 'bias': nn.init.zeros_}


def _layers():
    \"\"\"One Llama3TransformerBlock.Config per layer (our builder; no private torchtitan helpers).\"\"\"
    norm_init = {'weight': nn.init.ones_}
    rope = ComplexRoPE.Config(dim=DIM // N_HEADS, max_seq_len=SEQ_LEN, theta=ROPE_THETA, scaling='none')
    blocks = []
    for layer_id in range(N_LAYERS):
        out_init = _normal(HIDDEN_STD / (2 * (layer_id + 1)) ** 0.5)
        blocks.append(Llama3TransformerBlock.Config(
            attention_norm=RMSNorm.Config(normalized_shape=DIM, param_init=norm_init),
            ffn_norm=RMSNorm.Config(normalized_shape=DIM, param_init=norm_init),
            attention=make_gqa_config(dim=DIM, n_heads=N_HEADS, n_kv_heads=N_KV_HEADS,
                                      wqkv_param_init=_normal(HIDDEN_STD), wo_param_init=out_init,
                                      inner_attention=get_attention_config('flex'), fuse_qkv=True, rope=rope),
            feed_forward=make_ffn_config(dim=DIM, hidden_dim=FFN, w1_param_init=_normal(HIDDEN_STD),
                                         w2w3_param_init=out_init),
        ))
    return blocks


def _model():
    return Llama3Model.Config(
        dim=DIM, vocab_size=VOCAB,
        tok_embeddings=Embedding.Config(num_embeddings=VOCAB, embedding_dim=DIM,
                                        param_init={'weight': partial(nn.init.normal_, std=EMBEDDING_STD)}),
        norm=RMSNorm.Config(normalized_shape=DIM, param_init={'weight': nn.init.ones_}),
        lm_head=Linear.Config(in_features=DIM, out_features=VOCAB, param_init=_normal(OUTPUT_STD)),
        layers=_layers(),
    )
"""


def _config_function(plan: Plan) -> list[str]:
    """The ``scaleplan_plan()`` function: model spec, optimizer groups, scheduler, batch, checkpointing."""
    t, lay = plan.training, plan.layout
    L = [
        f"def {CONFIG_NAME}() -> Trainer.Config:",
        f"    spec = ModelSpec(name='llama3', flavor={('scaleplan_' + plan.plan_hash[:12])!r}, model=_model(),",
        "                     parallelize_fn=parallelize_llama, pipelining_fn=pipeline_llm,",
        "                     post_optimizer_build_fn=None, state_dict_adapter=Llama3StateDictAdapter)",
        "    groups = [",
    ]
    for pattern, kw in _param_groups(plan):
        L.append(f"        ParamGroupConfig(pattern={pattern!r}, optimizer_name='AdamW', optimizer_kwargs={kw!r}),")
    ac = "FullAC.Config()" if lay.recompute == "full" else "SelectiveAC.Config()"
    return L + [
        "    ]",
        "    return Trainer.Config(",
        "        model_spec=spec, hf_assets_path=HF_ASSETS_PATH,",
        "        loss=ChunkedLossWrapper.Config(loss_fn=CrossEntropyLoss.Config(global_vocab_size=decoder_vocab_size(spec))),",
        "        optimizer=OptimizersContainer.Config(param_groups=groups),",
        f"        lr_scheduler=LRSchedulersContainer.Config({', '.join(f'{k}={v!r}' for k, v in _schedule(plan).items())}),",
        f"        training=TrainingConfig(local_batch_size={py_num(lay.micro_batch)}, "
        f"global_batch_size={py_num(t.global_batch)}, seq_len={py_num(t.seq_len)}, steps={py_num(t.train_iters)}, "
        f"max_norm={py_num(t.clip_grad)}),",
        "        dataloader=HuggingFaceTextDataLoader.Config(dataset=DATASET),",
        "        parallelism=ParallelismConfig(),",
        "        checkpoint=CheckpointManager.Config(interval=1000, folder=CHECKPOINT_DIR),",
        f"        activation_checkpoint={ac},",
        "    )",
        "",
    ]


def config_module(plan: Plan, command: str | None = None) -> str:
    """The generated Python module: docstring, imports, the planned constants, builder, config function."""
    s, t = plan.shape, plan.training
    hidden_std, emb_std, out_std = _init_stds(plan)
    L = _docstring(plan, command, out_std) + ["from functools import partial", "", "import torch.nn as nn", ""]
    for mod, names in TORCHTITAN_NAMES.items():
        L.append(f"from {mod} import {', '.join(names)}")
    L += [
        "",
        f"HF_ASSETS_PATH = {str(data_value(plan, 'tokenizer_model'))!r}  # TODO: tokenizer folder (HF format)",
        f"DATASET = {str((plan.data or {}).get('dataset', 'c4'))!r}  # TODO: a dataset name torchtitan knows",
        f"CHECKPOINT_DIR = {str(data_value(plan, 'checkpoint_dir'))!r}  # TODO",
        "",
        "N_LAYERS, DIM, FFN, N_HEADS, N_KV_HEADS = "
        + ", ".join(map(py_num, (s.n_layers, s.d_model, s.d_ffn, s.n_heads, s.n_kv_heads))),
        "VOCAB, SEQ_LEN, ROPE_THETA, NORM_EPS = " + ", ".join(map(py_num, (s.padded_vocab, t.seq_len, s.rope_theta,
                                                                          s.norm_eps))),
        "HIDDEN_STD, EMBEDDING_STD, OUTPUT_STD = " + ", ".join(map(py_num, (hidden_std, emb_std, out_std))),
        "",
        "",
    ]
    return "\n".join(L) + "\n" + _MODEL_BUILDER + "\n\n" + "\n".join(_config_function(plan))


def cli_overrides(plan: Plan) -> list[tuple[str, Any]]:
    """tyro overrides run.sh passes: layout and schedule (the module already holds the same values)."""
    t, lay = plan.training, plan.layout
    shard = lay.shard_group if lay.fsdp and lay.shard_group else lay.dp
    replicate = lay.dp // shard if shard else 1
    sched = _schedule(plan)
    o = [
        ("--training.local_batch_size", lay.micro_batch), ("--training.global_batch_size", t.global_batch),
        ("--training.seq_len", t.seq_len), ("--training.steps", t.train_iters),
        ("--training.max_norm", t.clip_grad),
        ("--parallelism.data_parallel_shard_degree", shard), ("--parallelism.data_parallel_replicate_degree", replicate),
        ("--parallelism.tensor_parallel_degree", lay.tp), ("--parallelism.pipeline_parallel_degree", lay.pp),
        ("--parallelism.context_parallel_degree", lay.cp),
        ("--lr_scheduler.warmup_steps", sched["warmup_steps"]), ("--lr_scheduler.decay_type", sched["decay_type"]),
        ("--lr_scheduler.min_lr_factor", sched["min_lr_factor"]),
    ]
    if "decay_ratio" in sched:
        o.append(("--lr_scheduler.decay_ratio", sched["decay_ratio"]))
    return o


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
    for flag, v in cli_overrides(plan):
        L.append(f"  {flag} {q(v)}")
    L += [")",
          "exec ${TORCHRUN:-torchrun} --nproc_per_node \"$GPUS_PER_NODE\" --nnodes \"$NNODES\" --node_rank \"$NODE_RANK\" "
          "--master_addr \"$MASTER_ADDR\" --master_port \"$MASTER_PORT\" -m torchtitan.train \"${ARGS[@]}\" \"$@\"", ""]
    return "\n".join(L)


def render_torchtitan(plan: Plan, *, command: str | None = None) -> dict[str, str]:
    """The config module (``scaleplan_model.py``) and ``run.sh``."""
    return {f"{MODULE_NAME}.py": config_module(plan, command), "run.sh": run_script(plan, command)}


def export_torchtitan(plan: Plan, out_dir: str | Path, *, command: str | None = None) -> dict[str, Any]:
    """Write :func:`render_torchtitan`'s files into ``out_dir``."""
    out = write_export("torchtitan", plan, out_dir, render_torchtitan(plan, command=command))
    return {**out, "module": MODULE_NAME, "config": CONFIG_NAME}
