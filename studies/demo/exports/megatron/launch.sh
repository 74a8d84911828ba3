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

# μP at width 3584 (base width 64, m_d = 56). Megatron trains in SP;
# what the flags below express:
#   --lr 4.41073e-05          hidden matrices (QKV, out, MLP): base lr / m_d
#   --decoupled-lr 0.00247001  word embedding + output layer (Megatron's
#                       is_embedding_or_output_parameter): base lr, not scaled
#   --init-method-std 0.00234431  hidden init: base std / sqrt(m_d)
#   --embedding-init-method-std 0.0175432  embedding init: base std
# what they CANNOT express (the run is then not exactly μP):
#   * output multiplier alpha_out/m_d = 0.0656836 on the logits (MuReadout).
#     It cannot be folded into the output weights: Adam's update size does not scale with them.
#     Fix: multiply the final hidden state by this constant before the output layer (patch
#     GPTModel's output path), or use Megatron-LM main's --use-mup (rerun `scaleplan export
#     --megatron-mup native`).
#   * attention scale attn_mult/d_head = 0.0078125 instead of 1/sqrt(d_head);
#     with d_head fixed across widths this is a constant factor (microsoft/mup#17), but it
#     differs from the proxy; Megatron exposes no softmax scale flag outside --use-mup.
#   * input multiplier alpha_in = 1.23519 on the embedding output; patch the embedding forward.
#   * zero-init readout and query: Megatron has no flag; the output layer is initialised with
#     --init-method-std and the residual output projections with std/sqrt(2L).
#   * norms get --lr (= lr/m_d) instead of the base lr 0.00247001.
#   * weight decay: one --weight-decay for all matrices; set to the hidden value 0 (MuAdamW rule wd*m_d when wd_rule=mup),
#     so embedding/output decay with that value instead of 0.

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
  --init-method-std 0.00234431
  --embedding-init-method-std 0.0175432
  --lr 4.41073e-05
  --min-lr 4.41073e-06
  --lr-decay-style cosine
  --lr-decay-iters 68980
  --decoupled-lr 0.00247001
  --decoupled-min-lr 0.000247001
  --weight-decay 0
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
)

exec ${TORCHRUN:-torchrun} --nproc_per_node "$GPUS_PER_NODE" --nnodes "$NNODES" --node_rank "$NODE_RANK" --master_addr "$MASTER_ADDR" --master_port "$MASTER_PORT" "$MEGATRON_DIR/pretrain_gpt.py" "${ARGS[@]}"
