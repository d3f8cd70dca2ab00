# MoCo v2 on a CPU with the same data, budget and small-data recipe as the
# DenseCL CPU config.
_base_ = [
    '../_base_/models/mocov2_r50.py',
    '../_base_/datasets/folder_mocov2_cpu.py',
    '../_base_/schedules/sgd_coslr-640iters_cpu.py',
    '../_base_/cpu_runtime.py',
    '../_base_/small_data_recipe.py',
]
model = _base_.small_data_model
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=320, by_epoch=False,
                    max_keep_ckpts=2))
