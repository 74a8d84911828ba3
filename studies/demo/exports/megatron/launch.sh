#!/usr/bin/env bash
# Megatron-LM launch
# made by scaleplan 0.1.0 from plan 326a95c593764d0c2ad73a61f84b8af310da2666d9ff788dc9339033df1615b5
# command: scaleplan export studies/demo/plan.yaml --trainer megatron --out studies/demo/exports/megatron
# plan created: 2026-12-02T15:01:53Z
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
export CUDA_DEVICE_MAX_CONNECTIONS=1  # required by Megatron for TP/CP before Blackwell (validate_args)

# Run checks:
#   predicted final loss 2.1181 nats/token: the law besiroglu2024 at the planned shape (1.118e+10
#     parameters, 2.254e+11 tokens). Absolute losses depend on the data and tokenizer the law was
#     fitted on: compare the curve's trend with it
#   validation loss every 204 steps over 2 batches (1.1e+07 tokens) of the --split 99,1,0 validation
#     share; TensorBoard in $CHECKPOINT_DIR/tensorboard
#   logs every 100 steps; checkpoint every 2038 steps (young-daly)
#   a NaN/Inf loss stops the run (Megatron's default check); --check-for-spiky-loss flags a loss 10x
#     above the largest seen
# μP at width 5120 (base width 64, m_d = 80).
# Megatron-LM's native μP (--use-mup; core_v0.17.0 and later): --lr and --init-method-std are
# the base values, Megatron divides them by width_mult for hidden matrices; --mup-output-mult
# is alpha_out/m_d and --mup-base-head-dim attn_mult^2 so that the logit multiplier and the
# softmax scale attn_mult/d_head equal the proxy's.
# per group, as Megatron applies it (native mode, width_mult 80) and the ratio
# trainer / μP (multiplier folded into the weight, as Adam allows: update = lr*mult,
# init = std*mult, decay = lr*wd per step, eps = eps/mult):
#   group               lr   init std      mult      wd   update     init     mult    decay      eps
#   embedding      0.00247    0.01754     1.235       0        1        1        1        1        1
#   hidden       3.088e-05   0.001961         1       0        1        1        1        1   0.0125
#   hidden_out   3.088e-05  0.0002193         1       0        1   0.1118        1        1   0.0125
#   readout        0.00247    0.01754   0.04598       0        1      inf        1        1        1
#   norms          0.00247          1         1       0        1        1        1        1        1
#   attention softmax scale 0.0078125 vs μP 0.0078125 (ratio 1)
#   note: μP zero-initialises the readout; Megatron has no such option (init ratio inf)
#   note: μP zero-initialises the query projection; Megatron's fused linear_qkv draws it with the hidden std

ARGS=(
  --tensor-model-parallel-size 2
  --pipeline-model-parallel-size 1
  --context-parallel-size 1
  --sequence-parallel
  --use-distributed-optimizer
  --overlap-grad-reduce
  --overlap-param-gather
  --num-layers 40
  --hidden-size 5120
  --ffn-hidden-size 13568
  --num-attention-heads 40
  --group-query-attention
  --num-query-groups 8
  --seq-length 4096
  --max-position-embeddings 4096
  --micro-batch-size 1
  --global-batch-size 1344
  --train-iters 40953
  --tokenizer-type HuggingFaceTokenizer
  --tokenizer-model "${TOKENIZER_MODEL}"
  --load "${CHECKPOINT_DIR}"
  --save "${CHECKPOINT_DIR}"
  --data-path "${DATA_PATH[@]}"
  --data-cache-path "${CACHE_DIR}"
  --distributed-backend nccl
  --init-method-std 0.017543174524430678
  --embedding-init-method-std 0.01754317452443068
  --lr 0.002470009274361501
  --min-lr 0.0002470009274361501
  --lr-decay-style cosine
  --lr-decay-iters 40953
  --weight-decay 0.0
  --clip-grad 1
  --lr-warmup-iters 1683
  --optimizer adam
  --adam-beta1 0.9
  --adam-beta2 0.95
  --adam-eps 1e-08
  --split 99,1,0
  --save-interval 2038
  --log-interval 100
  --eval-interval 204
  --eval-iters 2
  --tensorboard-dir "${CHECKPOINT_DIR}/tensorboard"
  --tensorboard-log-interval 100
  --log-timers-to-tensorboard
  --log-validation-ppl-to-tensorboard
  --log-memory-to-tensorboard
  --check-for-spiky-loss
  --rerun-mode validate_results
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
  --mup-output-mult 0.04597852531012644
  --mup-base-head-dim 1.0
  --mup-attn-scale-power 1
)

exec ${TORCHRUN:-torchrun} --nproc_per_node "$GPUS_PER_NODE" --nnodes "$NNODES" --node_rank "$NODE_RANK" --master_addr "$MASTER_ADDR" --master_port "$MASTER_PORT" "$MEGATRON_DIR/pretrain_gpt.py" "${ARGS[@]}"
