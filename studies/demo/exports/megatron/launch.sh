#!/usr/bin/env bash
# Megatron-LM launch
# made by scaleplan 0.1.0 from plan c0956cf23643fedfabfe8467cf4fe2785e8e31bb74732ae248f158b88591590c
# command: scaleplan export studies/demo/plan.yaml --trainer megatron --out studies/demo/exports/megatron
# plan created: 2026-11-24T01:59:04Z
# Plan: 64 GPUs = 8 node(s) x 8. On one node: bash launch.sh. On several: run it on
# every node with NODE_RANK, MASTER_ADDR set (sbatch.sh does this under SLURM).
# TORCHRUN may be overridden (e.g. TORCHRUN=echo for a dry run).
set -euo pipefail

# ---- fill these in ----------------------------------------------------------------
# TODO: Megatron data prefix(es): 'PREFIX' or 'W1 PREFIX1 W2 PREFIX2' (no .bin/.idx)
DATA_PATH=(/path/to/dataset_text_document)
# TODO: tokenizer model file or Hugging Face tokenizer folder
TOKENIZER_MODEL=/path/to/tokenizer.model
# TODO: folder for checkpoints (saved to and resumed from)
CHECKPOINT_DIR=/path/to/checkpoints
# TODO: folder for Megatron's dataset index cache
CACHE_DIR=/path/to/cache
MEGATRON_DIR="${MEGATRON_DIR:-/path/to/Megatron-LM}"  # TODO: your Megatron-LM checkout

# ---- cluster ------------------------------------------------------------------------
GPUS_PER_NODE="${GPUS_PER_NODE:-8}"
NNODES="${NNODES:-8}"
NODE_RANK="${NODE_RANK:-${SLURM_NODEID:-0}}"
MASTER_ADDR="${MASTER_ADDR:-localhost}"
MASTER_PORT="${MASTER_PORT:-29500}"
export CUDA_DEVICE_MAX_CONNECTIONS=1  # required by Megatron for TP/CP overlap on Hopper

# μP at width 3584 (base width 64, m_d = 56).
# Megatron-LM's native μP (--use-mup; core_v0.17.0 and later): --lr and --init-method-std are
# the base values, Megatron divides them by width_mult for hidden matrices; --mup-output-mult
# is alpha_out/m_d and --mup-base-head-dim attn_mult^2 so that the logit multiplier and the
# softmax scale attn_mult/d_head equal the proxy's.
# per group, as Megatron applies it (native mode, width_mult 56) and the ratio
# trainer / μP (multiplier folded into the weight, as Adam allows: update = lr*mult,
# init = std*mult, decay = lr*wd per step, eps = eps/mult):
#   group               lr   init std      mult      wd   update     init     mult    decay      eps
#   embedding      0.00247    0.01754     1.235       0        1        1        1        1        1
#   hidden       4.411e-05   0.002344         1       0        1        1        1        1  0.01786
#   hidden_out   4.411e-05  0.0002621         1       0        1   0.1118        1        1  0.01786
#   readout        0.00247    0.01754   0.06568       0        1      inf        1        1        1
#   norms          0.00247          1         1       0        1        1        1        1        1
#   attention softmax scale 0.0078125 vs μP 0.0078125 (ratio 1)
#   note: μP zero-initialises the readout; Megatron has no such option (init ratio inf)
#   note: μP zero-initialises the query projection; Megatron's fused linear_qkv draws it with the hidden std

ARGS=(
  --tensor-model-parallel-size 1
  --pipeline-model-parallel-size 1
  --context-parallel-size 1
  --use-distributed-optimizer
  --num-layers 40
  --hidden-size 3584
  --ffn-hidden-size 9216
  --num-attention-heads 28
  --seq-length 4096
  --max-position-embeddings 4096
  --micro-batch-size 1
  --global-batch-size 1344
  --train-iters 68980
  --tokenizer-type HuggingFaceTokenizer
  --tokenizer-model "${TOKENIZER_MODEL}"
  --load "${CHECKPOINT_DIR}"
  --save "${CHECKPOINT_DIR}"
  --save-interval 1000
  --data-path "${DATA_PATH[@]}"
  --split 99,1,0
  --data-cache-path "${CACHE_DIR}"
  --distributed-backend nccl
  --init-method-std 0.01754317452443068
  --embedding-init-method-std 0.01754317452443068
  --lr 0.002470009274361501
  --min-lr 0.0002470009274361501
  --lr-decay-style cosine
  --lr-decay-iters 68980
  --weight-decay 0.0
  --clip-grad 1
  --lr-warmup-iters 2836
  --optimizer adam
  --adam-beta1 0.9
  --adam-beta2 0.95
  --adam-eps 1e-08
  --log-interval 10
  --eval-interval 68980
  --eval-iters 0
  --bf16
  --untie-embeddings-and-output-weights
  --position-embedding-type rope
  --disable-bias-linear
  --normalization RMSNorm
  --norm-epsilon 1e-05
  --make-vocab-size-divisible-by 128
  --attention-dropout 0
  --hidden-dropout 0
  --swiglu
  --recompute-activations
  --recompute-granularity selective
  --attention-softmax-in-fp32
  --transformer-impl transformer_engine
  --log-throughput
  --use-mup
  --mup-base-hidden-size 64
  --mup-embedding-mult 1.2351913446701004
  --mup-output-mult 0.06568360758589491
  --mup-base-head-dim 1.0
  --mup-attn-scale-power 1
)

exec ${TORCHRUN:-torchrun} --nproc_per_node "$GPUS_PER_NODE" --nnodes "$NNODES" --node_rank "$NODE_RANK" --master_addr "$MASTER_ADDR" --master_port "$MASTER_PORT" "$MEGATRON_DIR/pretrain_gpt.py" "${ARGS[@]}"
