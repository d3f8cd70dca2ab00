# Shared by the demo's DenseCL and MoCo v2 pre-trainings: the same data,
# views, schedule, queue and seed, so the two differ only in the algorithm.
#
# Data: the unlabeled pool that `make demo` writes (real photos and aerial
# tiles from package data, see densecl_plugin/data_prep/unlabeled_pool.py).
# Views: the MoCo v2 augmentation at 80 px, so the ResNet-18 C5 grid that
# DenseCL matches on is 3 x 3 (80 -> 40 -> 20 -> 20 -> 10 -> 5 -> 3).
_base_ = ['../../_base_/default_runtime.py']

crop_size = 80
view_pipeline = [
    dict(type='RandomResizedCrop', size=crop_size, scale=(0.2, 1.)),
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4,
         hue=0.1, prob=0.8),
    dict(type='RandomGrayscale', prob=0.2),
    dict(type='GaussianBlur', sigma=(0.1, 2.0), prob=0.5),
    dict(type='RandomFlip', prob=0.5),
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
    dict(type='PackSelfSupInputs', meta_keys=('img_path', )),
]
train_dataloader = dict(
    batch_size=16,
    num_workers=0,
    drop_last=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='UnlabeledImageDataset',
        data_root='data/demo/unlabeled/',
        pipeline=train_pipeline))

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
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=max_iters,
                    by_epoch=False, max_keep_ckpts=1, save_last=True))
log_processor = dict(by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
