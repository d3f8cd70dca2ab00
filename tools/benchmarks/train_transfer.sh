#!/usr/bin/env bash
# What tools/benchmarks/{mmdetection,mmsegmentation}/{dist,slurm}_train.sh run:
# fine-tune a benchmark config from a pre-trained checkpoint through
# tools/benchmarks/run_transfer.py, with torchrun (dist) or on Slurm (slurm: a
# batch job submitted with sbatch --requeue; the command returns at once and
# `run_transfer.py PRETRAIN --status` follows the job).
#   bash tools/benchmarks/train_transfer.sh dist CODEBASE \
#       CONFIG PRETRAIN GPUS [train.py args...]
#   bash tools/benchmarks/train_transfer.sh slurm CODEBASE \
#       PARTITION CONFIG PRETRAIN GPUS [train.py args...]
# CODEBASE: mmdetection or mmsegmentation (the calling script's folder).
# PRETRAIN: any layout (densecl_plugin / mmselfsup / mmpretrain / OpenSelfSup /
# MoCo checkpoint, or an extracted backbone); it is checked before training and
# passed as model.init_cfg.checkpoint. Runs go to
# ${WORK_ROOT:-work_dirs/transfer}/<checkpoint>/<config>; the metrics table
# lands next to them.
set -euo pipefail
MODE=${1:-}
CODEBASE=${2:-}
case "$MODE/$CODEBASE" in
  dist/mmdetection | dist/mmsegmentation) ARGS="CONFIG PRETRAIN GPUS" ;;
  slurm/mmdetection | slurm/mmsegmentation) ARGS="PARTITION CONFIG PRETRAIN GPUS" ;;
  *) echo "usage: $0 dist|slurm mmdetection|mmsegmentation ARGS..." >&2; exit 2 ;;
esac
shift 2
read -r -a NAMES <<< "$ARGS"
if [ $# -lt ${#NAMES[@]} ]; then
  echo "usage: tools/benchmarks/$CODEBASE/${MODE}_train.sh $ARGS [train.py args...]" >&2
  exit 2
fi
LAUNCH=(--launcher pytorch)
if [ "$MODE" = slurm ]; then
  LAUNCH=(--launcher slurm --partition "$1")
  shift
fi
exec "${PYTHON:-python}" "$(dirname "$0")/run_transfer.py" "$2" \
  --configs "$1" --gpus "$3" "${LAUNCH[@]}" \
  --work-dir "${WORK_ROOT:-work_dirs/transfer}" -- "${@:4}"
