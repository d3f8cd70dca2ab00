#!/usr/bin/env bash
# Fine-tune an mmseg benchmark config from a pre-trained checkpoint on Slurm.
#   bash tools/benchmarks/mmsegmentation/slurm_train.sh \
#       PARTITION CONFIG PRETRAIN GPUS [train.py args...]
# See tools/benchmarks/train_transfer.sh (PRETRAIN, WORK_ROOT); through
# tools/slurm_train.sh (GPUS_PER_NODE, CPUS_PER_TASK, SRUN_ARGS apply).
exec bash "$(dirname "$0")/../train_transfer.sh" slurm mmsegmentation "$@"
