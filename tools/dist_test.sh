#!/usr/bin/env bash
# Distributed testing with torchrun (NCCL on GPUs, gloo on a CPU-only machine).
#
#   bash tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCS_PER_NODE [test.py options]
#
# e.g. bash tools/dist_test.sh configs/stadapter_vitb16_k400.py ckpt.pth 8 \
#          --views 3x3 --dump preds.pkl
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR and PORT as for dist_train.sh.
set -euo pipefail

if [ "$#" -lt 3 ]; then
    echo "usage: bash $0 CONFIG CHECKPOINT NUM_PROCS_PER_NODE [test.py options]" >&2
    exit 2
fi
source "$(dirname "$0")/dist_launch.sh"
dist_launch "$3" test.py "$1" "$2" --launcher pytorch "${@:4}"
