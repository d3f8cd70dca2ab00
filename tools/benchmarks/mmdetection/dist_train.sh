#!/usr/bin/env bash
# Fine-tune an mmdet benchmark config from a pre-trained checkpoint (torchrun).
#   bash tools/benchmarks/mmdetection/dist_train.sh \
#       CONFIG PRETRAIN GPUS [train.py args...]
# PRETRAIN: any layout (densecl_plugin / mmselfsup / mmpretrain / OpenSelfSup /
# MoCo checkpoint, or an extracted backbone); it is checked before training and
# passed as model.init_cfg.checkpoint. Runs go to
# ${WORK_ROOT:-work_dirs/transfer}/<checkpoint>/<config>; the metrics table
# lands next to them. Environment of tools/dist_train.sh applies (PORT, ...).
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 CONFIG PRETRAIN GPUS [train.py args...]" >&2
  exit 2
fi
exec "${PYTHON:-python}" "$(dirname "$0")/../run_transfer.py" "$2" \
  --configs "$1" --gpus "$3" --launcher pytorch \
  --work-dir "${WORK_ROOT:-work_dirs/transfer}" -- "${@:4}"
