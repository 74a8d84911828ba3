#!/usr/bin/env bash
# SLURM wrapper for the Megatron-LM launch
# made by scaleplan 0.1.0 from plan 326a95c593764d0c2ad73a61f84b8af310da2666d9ff788dc9339033df1615b5
# command: scaleplan export studies/demo/plan.yaml --trainer megatron --out studies/demo/exports/megatron
# plan created: 2026-12-02T15:01:53Z
#SBATCH --job-name=scaleplan
#SBATCH --nodes=8
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --exclusive
# TODO: add --partition/--account/--time for your cluster (estimate: 6.9 days at the plan's MFU)
set -euo pipefail
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"
export MASTER_PORT="${MASTER_PORT:-29500}"
export NNODES=8 GPUS_PER_NODE=8
srun --export=ALL bash -c 'NODE_RANK=$SLURM_NODEID exec bash "$0"' "$SCRIPT_DIR/launch.sh"
