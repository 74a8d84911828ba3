#!/usr/bin/env bash
# torchtitan 0.3.0 launch
# made by scaleplan 0.1.0 from plan 326a95c593764d0c2ad73a61f84b8af310da2666d9ff788dc9339033df1615b5
# command: scaleplan export studies/demo/plan.yaml --trainer torchtitan --out studies/demo/exports/torchtitan --allow-approximate-mup
# plan created: 2026-12-02T15:01:53Z
# needs: pip install torchtitan==0.3.0 (and its torch); multi node: set NNODES/NODE_RANK/MASTER_ADDR.
set -euo pipefail
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export PYTHONPATH="$SCRIPT_DIR${PYTHONPATH:+:$PYTHONPATH}"
GPUS_PER_NODE="${GPUS_PER_NODE:-8}"
NNODES="${NNODES:-8}"
NODE_RANK="${NODE_RANK:-${SLURM_NODEID:-0}}"
MASTER_ADDR="${MASTER_ADDR:-localhost}"
MASTER_PORT="${MASTER_PORT:-29500}"
# APPROXIMATE μP (--allow-approximate-mup): see the module docstring of scaleplan_model.py for the folded per-group values and what differs.
ARGS=(
  --module scaleplan_model --config scaleplan_plan
  --training.local_batch_size 1
  --training.global_batch_size 1344
  --training.seq_len 4096
  --training.steps 40953
  --training.max_norm 1.0
  --parallelism.data_parallel_shard_degree 32
  --parallelism.data_parallel_replicate_degree 1
  --parallelism.tensor_parallel_degree 2
  --parallelism.pipeline_parallel_degree 1
  --parallelism.context_parallel_degree 1
  --lr_scheduler.warmup_steps 1683
  --lr_scheduler.decay_type cosine
  --lr_scheduler.min_lr_factor 0.1
  --checkpoint.interval 2038
)
exec ${TORCHRUN:-torchrun} --nproc_per_node "$GPUS_PER_NODE" --nnodes "$NNODES" --node_rank "$NODE_RANK" --master_addr "$MASTER_ADDR" --master_port "$MASTER_PORT" -m torchtitan.train "${ARGS[@]}" "$@"
