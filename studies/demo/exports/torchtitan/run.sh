#!/usr/bin/env bash
# torchtitan 0.3.0 launch
# made by scaleplan 0.1.0 from plan c0956cf23643fedfabfe8467cf4fe2785e8e31bb74732ae248f158b88591590c
# command: scaleplan export studies/demo/plan.yaml --trainer torchtitan --out studies/demo/exports/torchtitan
# plan created: 2026-11-24T01:59:04Z
# needs: pip install torchtitan==0.3.0 (and its torch); multi node: set NNODES/NODE_RANK/MASTER_ADDR.
set -euo pipefail
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export PYTHONPATH="$SCRIPT_DIR${PYTHONPATH:+:$PYTHONPATH}"
GPUS_PER_NODE="${GPUS_PER_NODE:-8}"
NNODES="${NNODES:-8}"
NODE_RANK="${NODE_RANK:-${SLURM_NODEID:-0}}"
MASTER_ADDR="${MASTER_ADDR:-localhost}"
MASTER_PORT="${MASTER_PORT:-29500}"
ARGS=(
  --module scaleplan_model --config scaleplan_plan
  --training.local_batch_size 1
  --training.global_batch_size 1344
  --training.seq_len 4096
  --training.steps 68980
  --training.max_norm 1
  --parallelism.data_parallel_shard_degree 64
  --parallelism.data_parallel_replicate_degree 1
  --parallelism.tensor_parallel_degree 1
  --parallelism.pipeline_parallel_degree 1
  --parallelism.context_parallel_degree 1
  --lr_scheduler.warmup_steps 2836
  --lr_scheduler.decay_type cosine
  --lr_scheduler.min_lr_factor 0.1
)
exec ${TORCHRUN:-torchrun} --nproc_per_node "$GPUS_PER_NODE" --nnodes "$NNODES" --node_rank "$NODE_RANK" --master_addr "$MASTER_ADDR" --master_port "$MASTER_PORT" -m torchtitan.train "${ARGS[@]}" "$@"
