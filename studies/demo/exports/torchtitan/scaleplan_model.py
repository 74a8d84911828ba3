"""torchtitan 0.3.0 config for the planned model (generated; edit the TODOs).

 scaleplan torchtitan export
 made by scaleplan 0.1.0 from plan 326a95c593764d0c2ad73a61f84b8af310da2666d9ff788dc9339033df1615b5
 command: scaleplan export studies/demo/plan.yaml --trainer torchtitan --out studies/demo/exports/torchtitan --allow-approximate-mup
 plan created: 2026-12-02T15:01:53Z

Shape: 40 layers, d_model 5120, ffn 13568, heads 40 (8 kv, head dim 128),
vocab 32000 padded to 32000, seq 4096; 11,180,856,320 parameters; RMSNorm.
Layout: TP2, PP1, CP1, DP32, mbs 1, accum 42, SP, recompute selective, ZeRO-1 (distributed optimizer).
Sharding: FSDP2 over 32 ranks (the plan's ZeRO-1/2 has no torchtitan equivalent; FSDP also shards parameters).
APPROXIMATE μP (--allow-approximate-mup): width 5120, base 64, m_d = 80.
torchtitan has no μP; μP's values:
  hidden-matrix LR 3.088e-05 vs embedding/readout LR 0.00247 (ratio 1/m_d = 0.0125 at width 5120, base 64)
  readout multiplier alpha_out/m_d = 0.04598 on the logits
  input multiplier alpha_in = 1.235
  attention scale attn_mult/d_head = 0.007812 vs torchtitan's 1/sqrt(d_head) = 0.08839 (x0.08839)
  init std hidden 0.001961, embedding 0.01754, readout 0, query 0
are written as standard parameterization, each multiplier c folded into its weight (init c*std,
LR c*lr, eps eps/c, weight decay wd/c); the checkpoint holds the folded weights:
  group              c         lr   init std       eps       wd
  embedding      1.235   0.003051    0.02167   8.1e-09        0
  readout      0.04598  0.0001136          0  2.17e-07        0
  query        0.08839  2.729e-06          0  1.13e-07        0
  norms              1    0.00247          1     1e-08        0
  hidden             1  3.088e-05   0.001961     1e-08        0
Still different from μP:
  gradient clipping (max_norm 1) sees the folded gradients: readout x21.75, embedding x0.8096, query x11.31 in the global norm
Exact μP: `scaleplan export --trainer megatron` (Megatron-LM --use-mup).
"""
from functools import partial

import torch.nn as nn

from torchtitan.components.checkpoint import CheckpointManager
from torchtitan.components.loss import ChunkedLossWrapper, CrossEntropyLoss
from torchtitan.components.metrics import MetricsProcessor
from torchtitan.components.optimizer import LRSchedulersContainer, OptimizersContainer, ParamGroupConfig
from torchtitan.config import ParallelismConfig, TrainingConfig
from torchtitan.distributed.activation_checkpoint import FullAC, SelectiveAC
from torchtitan.distributed.pipeline_parallel import pipeline_llm
from torchtitan.hf_datasets.text_datasets import HuggingFaceTextDataLoader
from torchtitan.models.common import ComplexRoPE, Embedding, LayerNorm, Linear, RMSNorm
from torchtitan.models.common.config_utils import get_attention_config, make_ffn_config, make_gqa_config, decoder_vocab_size
from torchtitan.models.common.param_init import skip_param_init
from torchtitan.models.llama3 import Llama3Model, Llama3TransformerBlock, Llama3StateDictAdapter, parallelize_llama
from torchtitan.protocols.model_spec import ModelSpec
from torchtitan.trainer import Trainer

HF_ASSETS_PATH = '/path/to/hf_assets'  # TODO: folder with tokenizer.json (HF format)
DATASET = 'c4'  # TODO: a dataset name torchtitan knows
CHECKPOINT_DIR = '/path/to/checkpoints'  # TODO

N_LAYERS, DIM, FFN, N_HEADS, N_KV_HEADS, HEAD_DIM = 40, 5120, 13568, 40, 8, 128
VOCAB, SEQ_LEN, ROPE_THETA, NORM_EPS = 32000, 4096, 10000.0, 1e-05
TIED = False
NORM, ATTN_BIAS, FFN_BIAS = 'rmsnorm', False, False
HIDDEN_STD = 0.001961386538888477
DEPTH_SCALED = False
QUERY_STD = 0.0
EMBEDDING_STD = 0.02166917733061378
OUTPUT_STD = 0.0


def _normal(std):
    if std == 0:
        return {'weight': nn.init.zeros_, 'bias': nn.init.zeros_}
    return {'weight': partial(nn.init.normal_, std=std), 'bias': nn.init.zeros_}


def _norm():
    if NORM == 'layernorm':
        return LayerNorm.Config(normalized_shape=DIM, eps=NORM_EPS,
                                param_init={'weight': nn.init.ones_, 'bias': nn.init.zeros_})
    return RMSNorm.Config(normalized_shape=DIM, eps=NORM_EPS, param_init={'weight': nn.init.ones_})


def _biases(attention, feed_forward):
    """Linear.Config.bias on Q, K, V and the output projection (ATTN_BIAS), on w1, w2, w3 (FFN_BIAS)."""
    if ATTN_BIAS:
        qkv = attention.qkv_linear
        for linear in [getattr(qkv, name) for name in ('wqkv', 'wq', 'wkv') if hasattr(qkv, name)] + [attention.wo]:
            linear.bias = True
    if FFN_BIAS:
        for linear in (feed_forward.w1, feed_forward.w2, feed_forward.w3):
            linear.bias = True


def _layers():
    """One Llama3TransformerBlock.Config per layer (our builder; no private torchtitan helpers)."""
    rope = ComplexRoPE.Config(dim=HEAD_DIM, max_seq_len=SEQ_LEN, theta=ROPE_THETA, scaling='none')
    blocks = []
    for layer_id in range(N_LAYERS):
        out_init = _normal(HIDDEN_STD / (2 * (layer_id + 1)) ** 0.5 if DEPTH_SCALED else HIDDEN_STD)
        attention = make_gqa_config(dim=DIM, n_heads=N_HEADS, n_kv_heads=N_KV_HEADS, head_dim=HEAD_DIM,
                                    wqkv_param_init=_normal(HIDDEN_STD), wo_param_init=out_init,
                                    inner_attention=get_attention_config('flex'), fuse_qkv=QUERY_STD is None,
                                    rope=rope)
        if QUERY_STD is not None:  # a separate wq: its own init (and AdamW group)
            attention.qkv_linear.wq.param_init = _normal(QUERY_STD)
        feed_forward = make_ffn_config(dim=DIM, hidden_dim=FFN, w1_param_init=_normal(HIDDEN_STD),
                                       w2w3_param_init=out_init)
        _biases(attention, feed_forward)
        blocks.append(Llama3TransformerBlock.Config(
            attention_norm=_norm(), ffn_norm=_norm(), attention=attention, feed_forward=feed_forward))
    return blocks


def _model():
    embedding_init = {'weight': skip_param_init if TIED else partial(nn.init.normal_, std=EMBEDDING_STD)}
    return Llama3Model.Config(
        dim=DIM, vocab_size=VOCAB, enable_weight_tying=TIED,
        tok_embeddings=Embedding.Config(num_embeddings=VOCAB, embedding_dim=DIM, param_init=embedding_init),
        norm=_norm(),
        lm_head=Linear.Config(in_features=DIM, out_features=VOCAB, param_init=_normal(OUTPUT_STD)),
        layers=_layers(),
    )


def scaleplan_plan() -> Trainer.Config:
    spec = ModelSpec(name='llama3', flavor='scaleplan_326a95c59376', model=_model(),
                     parallelize_fn=parallelize_llama, pipelining_fn=pipeline_llm,
                     post_optimizer_build_fn=None, state_dict_adapter=Llama3StateDictAdapter)
    groups = [
        ParamGroupConfig(pattern='(^|\\.)tok_embeddings\\.weight$', optimizer_name='AdamW', optimizer_kwargs={'lr': 0.0030509340769462015, 'weight_decay': 0.0, 'betas': (0.9, 0.95), 'eps': 8.095911652190891e-09}),
        ParamGroupConfig(pattern='(^|\\.)lm_head\\.weight$', optimizer_name='AdamW', optimizer_kwargs={'lr': 0.0001135673839374773, 'weight_decay': 0.0, 'betas': (0.9, 0.95), 'eps': 2.1749283894056454e-07}),
        ParamGroupConfig(pattern='\\.wq\\.weight$', optimizer_name='AdamW', optimizer_kwargs={'lr': 2.729000480460439e-06, 'weight_decay': 0.0, 'betas': (0.9, 0.95), 'eps': 1.131370849898476e-07}),
        ParamGroupConfig(pattern='(norm\\.weight|\\.bias)$', optimizer_name='AdamW', optimizer_kwargs={'lr': 0.002470009274361501, 'weight_decay': 0.0, 'betas': (0.9, 0.95), 'eps': 1e-08}),
        ParamGroupConfig(pattern='.*', optimizer_name='AdamW', optimizer_kwargs={'lr': 3.0875115929518764e-05, 'weight_decay': 0.0, 'betas': (0.9, 0.95), 'eps': 1e-08}),
    ]
    return Trainer.Config(
        model_spec=spec, hf_assets_path=HF_ASSETS_PATH,
        loss=ChunkedLossWrapper.Config(loss_fn=CrossEntropyLoss.Config(global_vocab_size=decoder_vocab_size(spec))),
        optimizer=OptimizersContainer.Config(param_groups=groups),
        lr_scheduler=LRSchedulersContainer.Config(warmup_steps=1683, decay_type='cosine', min_lr_factor=0.1),
        training=TrainingConfig(local_batch_size=1, global_batch_size=1344, seq_len=4096, steps=40953, max_norm=1.0),
        dataloader=HuggingFaceTextDataLoader.Config(dataset=DATASET),
        parallelism=ParallelismConfig(data_parallel_shard_degree=32, data_parallel_replicate_degree=1, tensor_parallel_degree=2, pipeline_parallel_degree=1, context_parallel_degree=1, enable_sequence_parallel=True),
        checkpoint=CheckpointManager.Config(enable=True, folder=CHECKPOINT_DIR, interval=2038),
        activation_checkpoint=SelectiveAC.Config(),  # plan recompute: selective
        metrics=MetricsProcessor.Config(log_freq=100),
    )
