#!/usr/bin/env bash
# Fine-tune an mmseg benchmark config from a pre-trained checkpoint (torchrun).
#   bash tools/benchmarks/mmsegmentation/dist_train.sh \
#       CONFIG PRETRAIN GPUS [train.py args...]
# See tools/benchmarks/train_transfer.sh (PRETRAIN, WORK_ROOT); the environment
# of tools/dist_train.sh applies (PORT, ...).
exec bash "$(dirname "$0")/../train_transfer.sh" dist mmsegmentation "$@"
