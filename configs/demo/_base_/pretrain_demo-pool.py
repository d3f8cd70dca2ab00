# Shared by the demo's DenseCL and MoCo v2 pre-trainings: the same data,
# views, schedule, queue and seed, so the two differ only in the algorithm.
#
# Data: the unlabeled pool that `make demo` writes (real photos and aerial
# tiles from package data, see densecl_plugin/data_prep/unlabeled_pool.py).
# Views: the MoCo v2 augmentation at 80 px, so the ResNet-18 C5 grid that
# DenseCL matches on is 3 x 3 (80 -> 40 -> 20 -> 20 -> 10 -> 5 -> 3).
_base_ = [
    '../../_base_/datasets/folder_mocov2_cpu.py',
    '../../_base_/cpu_runtime.py',
]

# The folder loader of folder_mocov2_cpu.py (its data_root is the pool), with
# the views of mocov2_pipeline.py cropped at 80 px instead of 64.
crop_size = 80
view_pipeline = [dict(t, size=crop_size) if t.type == 'RandomResizedCrop'
                 else t for t in _base_.view_pipeline]
train_pipeline = [dict(t, transforms=[view_pipeline]) if t.type == 'MultiView'
                  else t for t in _base_.train_pipeline]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

# What both algorithms change in their R50 model (each config merges it into
# `model`): ResNet-18; a queue shorter than the pool (405 images) so that few
# negatives are other crops of the query's own image; m = 0.99 because the
# paper's 0.999 is tuned for 200 epochs and would leave the key encoder at
# 85 % of its random init after 160 iterations (0.99 ** 160 = 0.20).
demo_model = dict(
    channels_last=True,  # with bf16 autocast: ~2x faster steps on a CPU
    queue_len=256,
    momentum=0.99,
    backbone=dict(depth=18),
    neck=dict(in_channels=512, hid_channels=512))

max_iters = 160
# bfloat16 autocast (float32 weights, gradients and InfoNCE logits)
optim_wrapper = dict(
    type='CPUAmpOptimWrapper',
    dtype='bfloat16',
    optimizer=dict(type='SGD', lr=0.03, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_iters, by_epoch=False, begin=0,
         end=max_iters)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
auto_scale_lr = dict(base_batch_size=16)

default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=max_iters,
                    by_epoch=False, max_keep_ckpts=1, save_last=True))
