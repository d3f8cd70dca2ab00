#!/usr/bin/env bash
# Multi-GPU / multi-node training with torchrun and MMEngine's `pytorch` launcher.
#   bash tools/dist_train.sh CONFIG GPUS [train.py args...]
# Environment: NNODES (1), NODE_RANK (0), PORT (29500), MASTER_ADDR (127.0.0.1).
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 CONFIG GPUS [--work-dir DIR] [--resume] [--amp] [--cfg-options ...]" >&2; exit 2; }
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
exec "${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" \
    --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --nproc_per_node="$2" \
    --master_port="${PORT:-29500}" \
    "$ROOT/tools/train.py" "$1" --launcher pytorch "${@:3}"
