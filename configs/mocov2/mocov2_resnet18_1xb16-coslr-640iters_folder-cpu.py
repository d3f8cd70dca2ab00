# MoCo v2 on a CPU with the same data, budget and small-data recipe as the
# DenseCL CPU config.
_base_ = [
    '../_base_/models/mocov2_r50.py',
    '../_base_/datasets/folder_mocov2_cpu.py',
    '../_base_/schedules/sgd_coslr-640iters_cpu.py',
    '../_base_/cpu_runtime.py',
]
# The small-data recipe (docs/pretraining_health.md): a queue of 64, short
# against a few hundred images, so few negatives are older keys of the
# query's own image; BN in 2 groups with the keys shuffled across them (one
# process mimics 2-GPU shuffle BN); m = 0.99, since the paper's 0.999 would
# leave the key encoder near its random init after 640 iterations. Raise
# queue_len with the data (the sanity hook warns above a tenth of it).
model = dict(
    queue_len=64,
    split_bn_groups=2,
    momentum=0.99,
    backbone=dict(depth=18),
    neck=dict(in_channels=512, hid_channels=512))
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=320, by_epoch=False,
                    max_keep_ckpts=2))
