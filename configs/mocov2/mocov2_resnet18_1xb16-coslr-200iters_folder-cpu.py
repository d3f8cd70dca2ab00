# MoCo v2 on a CPU with the same budget as the DenseCL CPU config.
_base_ = [
    '../_base_/models/mocov2_r50.py',
    '../_base_/datasets/folder_mocov2_cpu.py',
    '../_base_/schedules/sgd_coslr-200iters_cpu.py',
    '../_base_/cpu_runtime.py',
]
model = dict(
    queue_len=1024,
    backbone=dict(depth=18),
    neck=dict(in_channels=512, hid_channels=512))
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=100, by_epoch=False,
                    max_keep_ckpts=2))
