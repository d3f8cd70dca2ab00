# FCN R50-D8 with a DenseCL backbone: mmseg's `fcn_r50-d8.py` with the
# 7x7-stem ResNet that DenseCL pre-trains (mmseg's default is the deep-stem
# ResNetV1c with `pretrained='open-mmlab://resnet50_v1c'`, whose `stem.*`
# would stay random and which asserts against setting `init_cfg` as well).
#
# Pass the pre-trained weights with ONE option, for any checkpoint layout:
#     --cfg-options model.init_cfg.checkpoint=PATH
_base_ = 'mmseg::_base_/models/fcn_r50-d8.py'
custom_imports = dict(
    imports=['densecl_plugin.downstream'], allow_failed_imports=False)
model = dict(
    pretrained=None,
    # every choice explicit (mmselfsup 0.x / DenseCL's mmseg fork protocol):
    # nothing may fall back on a default of mmseg's ResNet or ResNetV1c
    backbone=dict(
        type='ResNet',
        depth=50,
        deep_stem=False,  # 7x7 conv1/bn1 stem, not V1c's three 3x3 convs
        avg_down=False,  # torchvision shortcut: strided 1x1 conv
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        # D8: layer3 / layer4 dilated 2 / 4 instead of strided (stride 8)
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        # the first block of a dilated stage uses half the dilation
        contract_dilation=True,
        frozen_stages=-1,  # every stage fine-tunes
        norm_cfg=dict(type='SyncBN', requires_grad=True),  # BN trains
        norm_eval=False,  # BN statistics update while fine-tuning
        style='pytorch',  # stride in conv2 (3x3), as torchvision
        # only matters for a random init (the checkpoint overwrites every
        # BN): mmseg's ResNet default, kept
        zero_init_residual=True,
        init_cfg=None),  # weights come from model.init_cfg
    # fails before training on a missing file, a file without a backbone,
    # or any missing / mis-shaped / unused backbone key
    init_cfg=dict(
        type='densecl_plugin.DenseCLPretrained',
        checkpoint=None,
        targets=['backbone']))
