"""torchtitan 0.3.0 config for the planned model (generated; edit the TODOs).

 scaleplan torchtitan export
 made by scaleplan 0.1.0 from plan c0956cf23643fedfabfe8467cf4fe2785e8e31bb74732ae248f158b88591590c
 command: scaleplan export studies/demo/plan.yaml --trainer torchtitan --out studies/demo/exports/torchtitan
 plan created: 2026-11-24T01:59:04Z

Shape: 40 layers, d_model 3584, ffn 9216, heads 28 (28 kv),
vocab 32000 padded to 32000, seq 4096; 6,248,492,544 parameters.
Init: hidden N(0, init_std) truncated at 3 std, residual output projections depth-scaled
(std / sqrt(2 (layer + 1)), as torchtitan's Llama 3); embedding N(0, embedding std).
μP: per-group AdamW LR / weight decay via ParamGroupConfig (embedding, readout, norms: base LR;
hidden: base LR / m_d), hidden init std / sqrt(m_d), readout init zero.
NOT expressed (patch the model if you need exact μP): output multiplier alpha_out/m_d = 0.0656836 on the logits, attention scale attn_mult/d_head = 0.0078125 (torchtitan uses 1/sqrt(d_head)), zero-init query, input multiplier 1.23519.
"""
from functools import partial

import torch.nn as nn

from torchtitan.components.checkpoint import CheckpointManager
from torchtitan.components.loss import ChunkedLossWrapper, CrossEntropyLoss
from torchtitan.components.optimizer import LRSchedulersContainer, OptimizersContainer, ParamGroupConfig
from torchtitan.config import ParallelismConfig, TrainingConfig
from torchtitan.distributed.activation_checkpoint import FullAC, SelectiveAC
from torchtitan.distributed.pipeline_parallel import pipeline_llm
from torchtitan.hf_datasets.text_datasets import HuggingFaceTextDataLoader
from torchtitan.models.common import ComplexRoPE, Embedding, Linear, RMSNorm
from torchtitan.models.common.config_utils import get_attention_config, make_ffn_config, make_gqa_config, decoder_vocab_size
from torchtitan.models.llama3 import Llama3Model, Llama3TransformerBlock, Llama3StateDictAdapter, parallelize_llama
from torchtitan.protocols.model_spec import ModelSpec
from torchtitan.trainer import Trainer

HF_ASSETS_PATH = '/path/to/tokenizer.model'  # TODO: tokenizer folder (HF format)
DATASET = 'c4'  # TODO: a dataset name torchtitan knows
CHECKPOINT_DIR = '/path/to/checkpoints'  # TODO

N_LAYERS, DIM, FFN, N_HEADS, N_KV_HEADS = 40, 3584, 9216, 28, 28
VOCAB, SEQ_LEN, ROPE_THETA, NORM_EPS = 32000, 4096, 10000.0, 1e-05
HIDDEN_STD, EMBEDDING_STD, OUTPUT_STD = 0.0023443053052428745, 0.01754317452443068, 0.0


def _normal(std):
    if std == 0:
        return {'weight': nn.init.zeros_, 'bias': nn.init.zeros_}
    return {'weight': partial(nn.init.trunc_normal_, std=std, a=-3 * std, b=3 * std), 'bias': nn.init.zeros_}


def _layers():
    """One Llama3TransformerBlock.Config per layer (our builder; no private torchtitan helpers)."""
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


def scaleplan_plan() -> Trainer.Config:
    spec = ModelSpec(name='llama3', flavor='scaleplan_c0956cf23643', model=_model(),
                     parallelize_fn=parallelize_llama, pipelining_fn=pipeline_llm,
                     post_optimizer_build_fn=None, state_dict_adapter=Llama3StateDictAdapter)
    groups = [
        ParamGroupConfig(pattern='^tok_embeddings\\.', optimizer_name='AdamW', optimizer_kwargs={'lr': 0.002470009274361501, 'weight_decay': 0.0, 'betas': (0.9, 0.95), 'eps': 1e-08}),
        ParamGroupConfig(pattern='^lm_head\\.', optimizer_name='AdamW', optimizer_kwargs={'lr': 0.002470009274361501, 'weight_decay': 0.0, 'betas': (0.9, 0.95), 'eps': 1e-08}),
        ParamGroupConfig(pattern='norm\\.weight$', optimizer_name='AdamW', optimizer_kwargs={'lr': 0.002470009274361501, 'weight_decay': 0.0, 'betas': (0.9, 0.95), 'eps': 1e-08}),
        ParamGroupConfig(pattern='.*', optimizer_name='AdamW', optimizer_kwargs={'lr': 4.410730847074109e-05, 'weight_decay': 0.0, 'betas': (0.9, 0.95), 'eps': 1e-08}),
    ]
    return Trainer.Config(
        model_spec=spec, hf_assets_path=HF_ASSETS_PATH,
        loss=ChunkedLossWrapper.Config(loss_fn=CrossEntropyLoss.Config(global_vocab_size=decoder_vocab_size(spec))),
        optimizer=OptimizersContainer.Config(param_groups=groups),
        lr_scheduler=LRSchedulersContainer.Config(warmup_steps=2836, decay_type='cosine', min_lr_factor=0.1),
        training=TrainingConfig(local_batch_size=1, global_batch_size=1344, seq_len=4096, steps=68980, max_norm=1.0),
        dataloader=HuggingFaceTextDataLoader.Config(dataset=DATASET),
        parallelism=ParallelismConfig(),
        checkpoint=CheckpointManager.Config(interval=1000, folder=CHECKPOINT_DIR),
        activation_checkpoint=SelectiveAC.Config(),
    )
