#!/usr/bin/env bash
# Training on a Slurm cluster with MMEngine's `slurm` launcher.
#   bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args...]
# Environment: GPUS (8), GPUS_PER_NODE (8), CPUS_PER_TASK (5), SRUN_ARGS ("").
set -euo pipefail
[ $# -ge 4 ] || { echo "usage: $0 PARTITION JOB_NAME CONFIG WORK_DIR [train.py args...]" >&2; exit 2; }
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck disable=SC2086  # SRUN_ARGS: several words on purpose
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
srun -p "$1" \
    --job-name="$2" \
    --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="${GPUS:-8}" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="${CPUS_PER_TASK:-5}" \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS:-} \
    "${PYTHON:-python}" -u "$ROOT/tools/train.py" "$3" --work-dir="$4" \
    --launcher=slurm "${@:5}"
