# `make demo`: FCN R18-D8 fine-tuned on the stardist nuclei (real masks, two
# classes: background / nucleus; 128 px tiles written by
# densecl_lab/data_prep/binary_segmentation.py), 120 iterations x 8 crops
# of 64 px, evaluated on the whole held-out tiles (mIoU).
# The demo runs it three times with the same seed, changing only
# `model.init_cfg`: None (random init), or the MoCo v2 / DenseCL backbone
#     model.init_cfg.checkpoint=work_dirs/demo/pretrain/<algo>/backbone.pth
_base_ = [
    'mmseg::_base_/models/fcn_r50-d8.py',
    'mmseg::_base_/default_runtime.py',
]
custom_imports = dict(
    imports=['densecl_plugin.downstream'], allow_failed_imports=False)
classes = ('background', 'nucleus')
crop_size = (64, 64)
norm_cfg = dict(type='BN', requires_grad=True)  # no process group on a CPU
model = dict(
    pretrained=None,
    data_preprocessor=dict(size=crop_size),
    # the 7x7-stem ResNet that DenseCL pre-trains (mmseg's default is the
    # deep-stem ResNetV1c, whose stem would stay random)
    backbone=dict(
        type='ResNet',
        depth=18,
        deep_stem=False,
        avg_down=False,  # torchvision shortcut: strided 1x1 conv
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        # D8: layer3 / layer4 dilated 2 / 4 instead of strided (stride 8)
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        # the first block of a dilated stage uses half the dilation
        contract_dilation=True,
        frozen_stages=-1,  # every stage fine-tunes
        norm_cfg=norm_cfg,  # trainable BN
        norm_eval=False,  # BN statistics update while fine-tuning
        style='pytorch',  # stride in the 3x3 conv, as the pre-trained net
        # only matters for the random-init run (the checkpoint overwrites
        # every BN): mmseg's default, with which the README's random-init
        # row was measured
        zero_init_residual=True,
        init_cfg=None),
    decode_head=dict(
        in_channels=512, channels=128, num_classes=len(classes),
        norm_cfg=norm_cfg),
    auxiliary_head=dict(
        in_channels=256, channels=64, num_classes=len(classes),
        norm_cfg=norm_cfg),
    init_cfg=dict(
        type='densecl_plugin.DenseCLPretrained',
        checkpoint=None,
        targets=['backbone']))

data_root = 'data/demo/nuclei/'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
nuclei_dataset = dict(
    type='BaseSegDataset',
    data_root=data_root,
    metainfo=dict(classes=classes, palette=[[0, 0, 0], [255, 64, 64]]),
    img_suffix='.png',
    seg_map_suffix='.png',
    reduce_zero_label=False)
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        **nuclei_dataset,
        data_prefix=dict(
            img_path='img_dir/train', seg_map_path='ann_dir/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        **nuclei_dataset,
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

max_iters = 120
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=5e-4))
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters,
         by_epoch=False)
]
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False,
                    interval=max_iters, max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
