# What every DenseCL detection benchmark changes in mmdet's ResNet-50 models,
# as variables that the configs pick up with `_base_.<name>`.
#
# Pass the pre-trained weights with ONE option, for any checkpoint layout
# (full densecl_plugin / mmselfsup / mmpretrain checkpoint, OpenSelfSup,
# MoCo, or an extracted backbone):
#     --cfg-options model.init_cfg.checkpoint=PATH
custom_imports = dict(
    imports=['densecl_plugin.downstream'], allow_failed_imports=False)

# SyncBN everywhere the protocol trains BN (MoCo / DenseCL detectron2 configs:
# `NORM: SyncBN`, `FREEZE_AT: 0`); MMEngine turns it into BN when not
# distributed.
densecl_norm_cfg = dict(type='SyncBN', requires_grad=True)

# The weights were pre-trained on RGB inputs normalised with the ImageNet
# mean/std (pytorch style), not on caffe-style BGR minus mean: the
# preprocessor must sit INSIDE `model` (a top-level `data_preprocessor`
# variable is ignored when the base model defines one).
densecl_det_preprocessor = dict(
    type='DetDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_size_divisor=32)

# Fine-tune every stage and its BN statistics, torchvision (pytorch) style:
# the stride sits in the 3x3 conv, like the pre-trained network. Every
# choice is explicit: mmdet's ResNet defaults to norm_eval=True (frozen BN)
# and its caffe-C4 / FPN base models to frozen_stages=1 and BN.
densecl_backbone = dict(
    type='ResNet',  # mmdet's plain ResNet (not V1c/V1d), torchvision layout
    depth=50,
    frozen_stages=-1,  # detectron2 FREEZE_AT 0: stem and res2-res5 train
    norm_cfg=densecl_norm_cfg,  # SyncBN with trainable affine parameters
    norm_eval=False,  # BN statistics update while fine-tuning
    style='pytorch',  # detectron2 STRIDE_IN_1X1 False: stride in conv2
    deep_stem=False,  # the 7x7 conv1/bn1 stem that pre-training trains
    avg_down=False,  # torchvision shortcut: strided 1x1 conv, no avg pool
    # only matters for a random init (the checkpoint overwrites every BN):
    # detectron2 leaves each block's last BN at weight 1, as pre-training
    zero_init_residual=False,
    init_cfg=None)  # weights come from model.init_cfg

# C4: res2-res4 (stride 16) in the backbone, res5 in the RoI shared head
# (detectron2 `RES5_DILATION: 1`); the same as mmdet's caffe-C4 base model.
densecl_c4_backbone = dict(
    densecl_backbone,
    num_stages=3,
    strides=(1, 2, 2),
    dilations=(1, 1, 1),
    out_indices=(2, ))

# FPN: all four stages at strides 4-32 feed the FPN (mmdet's R50-FPN).
densecl_fpn_backbone = dict(
    densecl_backbone,
    num_stages=4,
    strides=(1, 2, 2, 2),
    dilations=(1, 1, 1, 1),
    out_indices=(0, 1, 2, 3))

# C4: res5 runs as the RoI shared head, followed by an extra norm
# (detectron2 `Res5ROIHeadsExtraNorm`, as in the MoCo / DenseCL protocol).
densecl_c4_shared_head = dict(
    type='DenseCLResLayerExtraNorm',
    depth=50,
    stage=3,
    stride=2,
    dilation=1,
    style='pytorch',  # stride 2 in conv2 of the first block, as res5
    norm_cfg=densecl_norm_cfg,  # SyncBN, trainable (FREEZE_AT 0)
    norm_eval=False,  # mmdet's ResLayer defaults to True (frozen BN)
    init_cfg=None)  # layer4 comes from model.init_cfg

# Model-level initialisers: load the backbone (and the C4 shared head's
# layer4) from the checkpoint; fail before training on a missing file, a
# file without a backbone, or any missing / mis-shaped / unused key.
densecl_init_cfg = dict(
    type='densecl_plugin.DenseCLPretrained',
    checkpoint=None,
    targets=['backbone'])
densecl_c4_init_cfg = dict(
    type='densecl_plugin.DenseCLPretrained',
    checkpoint=None,
    targets=['backbone', 'roi_head.shared_head'],
    allow_missing=['roi_head.shared_head.extra_norm.'])

# multi-scale training of the COCO benchmarks (MoCo / DenseCL protocol)
densecl_coco_ms_scales = [(1333, 640), (1333, 672), (1333, 704), (1333, 736),
                          (1333, 768), (1333, 800)]
