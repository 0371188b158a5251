#!/usr/bin/env bash
# Shared by dist_train.sh and dist_test.sh (sourced, not run): starts a script
# of tools/ with torchrun (NCCL on GPUs, gloo on a CPU-only machine).
#
#   dist_launch NUM_PROCS_PER_NODE SCRIPT [SCRIPT ARGS...]
#
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node.
# PYTHON picks the interpreter (default: python), which must have the
# package installed (pip install -e .).
dist_launch() {
    local nprocs=$1 script=$2
    shift 2
    exec "${PYTHON:-python}" -m torch.distributed.run \
        --nnodes="${NNODES:-1}" \
        --node_rank="${NODE_RANK:-0}" \
        --master_addr="${MASTER_ADDR:-127.0.0.1}" \
        --master_port="${PORT:-29500}" \
        --nproc_per_node="$nprocs" \
        "$(dirname "${BASH_SOURCE[0]}")/$script" "$@"
}
