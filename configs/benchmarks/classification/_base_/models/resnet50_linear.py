# Linear probe: frozen ResNet-50 (BN in eval, no gradients), global average
# pooling, one linear layer. Load pre-trained weights with
#   --cfg-options model.pretrained=PATH   (full or extracted checkpoint)
# `LinearClassifier` also freezes the backbone itself (requires_grad False,
# eval mode in `train()`, no_grad forward); the backbone options below say
# the same, so that nothing rests on a default of mmdet's ResNet.
model = dict(
    type='LinearClassifier',
    backbone=dict(
        type='mmdet.ResNet',  # plain ResNet, torchvision layout
        depth=50,
        num_stages=4,
        out_indices=(3, ),  # res5 (stride 32) is pooled
        strides=(1, 2, 2, 2),
        dilations=(1, 1, 1, 1),
        frozen_stages=4,  # stem and all four stages: no gradients, eval
        norm_eval=True,  # BN keeps the pre-trained running statistics
        norm_cfg=dict(type='BN', requires_grad=False),  # frozen affine too
        style='pytorch',  # stride in conv2 (3x3), as the pre-trained net
        deep_stem=False,  # the 7x7 conv1/bn1 stem that pre-training trains
        avg_down=False,  # torchvision shortcut: strided 1x1 conv
        # only matters without `pretrained` (a random-init probe): MoCo's
        # torchvision ResNet leaves each block's last BN at weight 1, where
        # mmdet's default would zero it (every block an identity)
        zero_init_residual=False,
        init_cfg=None),  # weights come from model.pretrained
    in_channels=2048,
    num_classes=1000,
    pretrained=None,
    data_preprocessor=dict(
        type='ImgDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True))
