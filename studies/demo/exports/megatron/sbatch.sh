#!/usr/bin/env bash
# SLURM wrapper for the Megatron-LM launch
# made by scaleplan 0.1.0 from plan ad76a059f98b321ac12aaaa1669235a7d2befc8d073fe64c853dc92f42a1c766
# command: scaleplan export studies/demo/plan.yaml --trainer megatron --out studies/demo/exports/megatron
# plan created: 2026-12-02T10:04:24Z
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
