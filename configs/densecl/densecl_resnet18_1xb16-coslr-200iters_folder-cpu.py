# DenseCL on a CPU: ResNet-18, 64 px views, a 1024-entry queue, 200
# iterations on a folder of images. lambda warms up after 20 iterations;
# the correspondence accuracy (corr_acc) is logged every 10 iterations.
_base_ = [
    '../_base_/models/densecl_r50.py',
    '../_base_/datasets/folder_mocov2_cpu.py',
    '../_base_/schedules/sgd_coslr-200iters_cpu.py',
    '../_base_/cpu_runtime.py',
]
model = dict(
    queue_len=1024,
    backbone=dict(depth=18),
    neck=dict(in_channels=512, hid_channels=512))
custom_hooks = [
    dict(type='DenseCLHook', start_iters=20),
    # logs corr_acc: argmax matches within one cell of the crop geometry
    dict(type='CorrespondenceHook', interval=10),
]
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=100, by_epoch=False,
                    max_keep_ckpts=2))
