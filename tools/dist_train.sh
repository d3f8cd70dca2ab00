#!/usr/bin/env bash
# Distributed training with torchrun and MMEngine's `pytorch` launcher: on
# GPUs (NCCL, one process per GPU) or, where CUDA is not available, on CPUs
# (gloo; densecl_plugin/utils/dist_launch.py). Same configs, same command.
#   bash tools/dist_train.sh CONFIG NPROC_PER_NODE [train.py args...]
# Environment:
#   NNODES (1)          nodes; with more than one, run the same command on
#                       each node (c10d rendezvous at MASTER_ADDR:PORT)
#   NODE_RANK (0)       this node's rank (c10d may order the nodes otherwise)
#   MASTER_ADDR (127.0.0.1), PORT (29500)   node 0's address, a free port
#   MAX_RESTARTS (0)    torchrun --max-restarts: a dead process restarts the
#                       node's processes, which resume from the newest
#                       intact checkpoint of the work dir by themselves
#   RDZV_ID (densecl-$PORT)  the job's id (same on every node)
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 CONFIG NPROC_PER_NODE [--work-dir DIR] [--resume] [--amp] [--cfg-options ...]" >&2; exit 2; }
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
NNODES=${NNODES:-1}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
PORT=${PORT:-29500}
# the c10d (elastic) rendezvous, on one node too: every node's agent sees a
# failure on any node, and a restart gets a fresh store (torch's static
# rendezvous hands the restarted processes the dead ones' gloo addresses)
RDZV=(--rdzv-backend=c10d --rdzv-endpoint="$MASTER_ADDR:$PORT"
      --node-rank="${NODE_RANK:-0}")
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
exec "${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --nproc-per-node="$2" \
    --max-restarts="${MAX_RESTARTS:-0}" \
    --rdzv-id="${RDZV_ID:-densecl-$PORT}" \
    "${RDZV[@]}" \
    "$ROOT/tools/train.py" "$1" --launcher pytorch "${@:3}"
