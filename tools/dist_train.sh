#!/usr/bin/env bash
# Distributed training with torchrun (NCCL on GPUs, gloo on a CPU-only machine).
#
#   bash tools/dist_train.sh CONFIG NUM_PROCS_PER_NODE [tools/train.py options]
#
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node, e.g.
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 PORT=29500 \
#       bash tools/dist_train.sh configs/stadapter_vitb16_k400.py 8
# PYTHON picks the interpreter (default: python).
set -euo pipefail

if [ "$#" -lt 2 ]; then
    echo "usage: bash $0 CONFIG NUM_PROCS_PER_NODE [train.py options]" >&2
    exit 2
fi
source "$(dirname "$0")/dist_launch.sh"
dist_launch "$2" train.py "$1" --launcher pytorch "${@:3}"
