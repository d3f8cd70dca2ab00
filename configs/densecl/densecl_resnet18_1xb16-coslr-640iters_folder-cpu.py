# DenseCL on a CPU: ResNet-18, 80 px views (a 3 x 3 C5 grid), 640
# iterations x 16 images on a folder of images, with the small-data recipe
# (configs/_base_/small_data_recipe.py). lambda warms up for
# start_iters='auto' iterations (a tenth of the run below 100,000 images:
# 64; docs/auto_values.md); the correspondence accuracy (corr_acc) is
# logged every 10 iterations.
_base_ = [
    '../_base_/models/densecl_r50.py',
    '../_base_/datasets/folder_mocov2_cpu.py',
    '../_base_/schedules/sgd_coslr-640iters_cpu.py',
    '../_base_/cpu_runtime.py',
    '../_base_/small_data_recipe.py',
]
model = _base_.small_data_model
custom_hooks = [
    dict(type='DenseCLHook', start_iters='auto'),
    # logs corr_acc: argmax matches within one cell of the crop geometry
    dict(type='CorrespondenceHook', interval=10),
]
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=320, by_epoch=False,
                    max_keep_ckpts=2))
