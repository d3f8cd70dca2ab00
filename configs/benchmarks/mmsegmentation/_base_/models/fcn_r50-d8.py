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
    backbone=dict(
        type='ResNet',
        depth=50,
        deep_stem=False,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        contract_dilation=True,
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None),  # weights come from model.init_cfg
    # fails before training on a missing file, a file without a backbone,
    # or any missing / mis-shaped / unused backbone key
    init_cfg=dict(
        type='densecl_plugin.DenseCLPretrained',
        checkpoint=None,
        targets=['backbone']))
