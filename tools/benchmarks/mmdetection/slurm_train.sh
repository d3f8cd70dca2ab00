#!/usr/bin/env bash
# Fine-tune an mmdet benchmark config from a pre-trained checkpoint on Slurm.
#   bash tools/benchmarks/mmdetection/slurm_train.sh \
#       PARTITION CONFIG PRETRAIN GPUS [train.py args...]
# As dist_train.sh, through tools/slurm_train.sh (GPUS_PER_NODE, CPUS_PER_TASK,
# SRUN_ARGS apply).
set -euo pipefail
if [ $# -lt 4 ]; then
  echo "usage: $0 PARTITION CONFIG PRETRAIN GPUS [train.py args...]" >&2
  exit 2
fi
exec "${PYTHON:-python}" "$(dirname "$0")/../run_transfer.py" "$3" \
  --configs "$2" --gpus "$4" --launcher slurm --partition "$1" \
  --work-dir "${WORK_ROOT:-work_dirs/transfer}" -- "${@:5}"
