# `make demo`: Faster R-CNN R18-FPN fine-tuned on the deepforest tree crowns
# (200 px aerial tiles, one class, VOC07+12 layout written by
# densecl_lab/data_prep/voc_detection.py), 60 iterations x 4 images.
# The demo runs it three times with the same seed, changing only
# `model.init_cfg`: None (random init), or the MoCo v2 / DenseCL backbone
#     model.init_cfg.checkpoint=work_dirs/demo/pretrain/<algo>/backbone.pth
# The whole backbone is fine-tuned with BN in training mode (the MoCo /
# DenseCL detection protocol); AP at IoU 0.50 ('area' mode) and the COCO-style
# mean over IoU 0.50:0.95 come from one VOCMetric.
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(
    imports=['densecl_plugin.downstream'], allow_failed_imports=False)
classes = ('Tree', )
model = dict(
    # every choice explicit (mmdet's ResNet / R50-FPN base default to
    # norm_eval=True and frozen_stages=1):
    backbone=dict(
        type='ResNet',
        depth=18,
        num_stages=4,
        out_indices=(0, 1, 2, 3),  # strides 4-32 feed the FPN
        strides=(1, 2, 2, 2),
        dilations=(1, 1, 1, 1),
        frozen_stages=-1,  # every stage fine-tunes (FREEZE_AT 0)
        # plain BN (no process group on a CPU), trainable affine parameters
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,  # BN statistics update while fine-tuning
        style='pytorch',  # stride in the 3x3 conv, as the pre-trained net
        deep_stem=False,  # the 7x7 conv1/bn1 stem that pre-training trains
        avg_down=False,  # torchvision shortcut: strided 1x1 conv
        # only matters for the random-init run (the checkpoint overwrites
        # every BN): mmdet's default, kept because the README's random-init
        # row was measured with it (detectron2 would keep the BN at 1)
        zero_init_residual=True,
        init_cfg=None),  # the weights come from model.init_cfg
    # a 64-channel FPN and a 256-d box head: on a CPU the 256-channel 3x3
    # convs of mmdet's FPN and RPN at stride 4 would cost 3x the backbone
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=64),
    rpn_head=dict(in_channels=64, feat_channels=64),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(
            in_channels=64, fc_out_channels=256,
            num_classes=len(classes))),
    # 128 RoIs per image (mmdet samples 512 of 1000+ proposals at 600+ px)
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(
        rpn=dict(nms_pre=1000, max_per_img=300),
        rcnn=dict(max_per_img=100)),
    init_cfg=dict(
        type='densecl_plugin.DenseCLPretrained',
        checkpoint=None,
        targets=['backbone']))

data_root = 'data/demo/VOCdevkit/'
# tiles stay at their 200 px: trees are 20-60 px, as the FPN anchors expect
img_scale = (200, 200)
# `bbox_min_size=None`: VOC's default of 32 px would drop half of the crowns
filter_cfg = dict(filter_empty_gt=True, min_size=0, bbox_min_size=None)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
voc_dataset = dict(
    type='VOCDataset',
    data_root=data_root,
    metainfo=dict(classes=classes),
    filter_cfg=filter_cfg,
    pipeline=train_pipeline)
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type='ConcatDataset',
        # VOC2007 and VOC2012 differ in metainfo['dataset_type'] only
        ignore_keys=['dataset_type'],
        datasets=[
            dict(
                **voc_dataset,
                ann_file='VOC2007/ImageSets/Main/trainval.txt',
                data_prefix=dict(sub_data_root='VOC2007/')),
            dict(
                **voc_dataset,
                ann_file='VOC2012/ImageSets/Main/trainval.txt',
                data_prefix=dict(sub_data_root='VOC2012/')),
        ]))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='VOCDataset',
        data_root=data_root,
        metainfo=dict(classes=classes),
        ann_file='VOC2007/ImageSets/Main/test.txt',
        data_prefix=dict(sub_data_root='VOC2007/'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='VOCMetric',
    metric='mAP',
    eval_mode='area',
    iou_thrs=[0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95])
test_evaluator = val_evaluator

max_iters = 60
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4),
    clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=10),
    dict(type='CosineAnnealingLR', T_max=max_iters, by_epoch=False, begin=0,
         end=max_iters)
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=max_iters,
                    by_epoch=False, max_keep_ckpts=1),
    visualization=dict(type='DetVisualizationHook', draw=False))
log_processor = dict(type='LogProcessor', window_size=10, by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
