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
# the stride sits in the 3x3 conv, like the pre-trained network.
densecl_backbone = dict(
    frozen_stages=-1,
    norm_cfg=densecl_norm_cfg,
    norm_eval=False,
    style='pytorch',
    init_cfg=None)  # weights come from model.init_cfg

# C4: res5 runs as the RoI shared head, followed by an extra norm
# (detectron2 `Res5ROIHeadsExtraNorm`, as in the MoCo / DenseCL protocol).
densecl_c4_shared_head = dict(
    type='DenseCLResLayerExtraNorm',
    depth=50,
    stage=3,
    stride=2,
    dilation=1,
    style='pytorch',
    norm_cfg=densecl_norm_cfg,
    norm_eval=False,
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
