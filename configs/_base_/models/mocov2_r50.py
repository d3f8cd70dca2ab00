# MoCo v2 (Chen et al., 2020), ResNet-50; the baseline DenseCL is compared to,
# and the base of densecl_r50.py (same backbone, queue, momentum and head).
# `momentum` follows the paper: k <- m * k + (1 - m) * q with m = 0.999
# (mmpretrain writes 0.001 for this).
model = dict(
    type='MoCoV2',
    queue_len=65536,
    feat_dim=128,
    momentum=0.999,
    # BN in one group per process (our default, written out): the paper's
    # 8 GPUs shuffle the key batch across processes (shuffle BN)
    split_bn_groups=1,
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor',
        mean=(123.675, 116.28, 103.53),
        std=(58.395, 57.12, 57.375),
        to_rgb=True),
    backbone=dict(
        type='mmdet.ResNet',
        depth=50,
        in_channels=3,
        out_indices=(3, ),  # C5 only
        # mmdet's ResNet defaults, written out for pre-training: BN trains
        # (mmdet defaults to norm_eval=True: every BN layer would stay in
        # eval mode under model.train(); DenseCL/MoCoV2 refuse that), no
        # stage frozen, torchvision block layout (stride in the 3x3 conv),
        # 7x7 stem, no dilation, no zero-initialised residuals, mmdet's
        # default init (Kaiming fan_out convs, BN weight 1): as the anchors.
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        frozen_stages=-1,
        style='pytorch',
        deep_stem=False,
        strides=(1, 2, 2, 2),
        dilations=(1, 1, 1, 1),
        zero_init_residual=False,
        init_cfg=[
            dict(type='Kaiming', layer='Conv2d'),
            dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])
        ]),
    neck=dict(
        type='MoCoV2Neck',
        in_channels=2048,
        hid_channels=2048,
        out_channels=128),
    head=dict(type='ContrastiveHead', temperature=0.2),
)
