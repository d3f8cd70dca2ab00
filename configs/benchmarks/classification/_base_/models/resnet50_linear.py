# Linear probe: frozen ResNet-50 (BN in eval, no gradients), global average
# pooling, one linear layer. Load pre-trained weights with
#   --cfg-options model.pretrained=PATH   (full or extracted checkpoint)
model = dict(
    type='LinearClassifier',
    backbone=dict(
        type='mmdet.ResNet',
        depth=50,
        num_stages=4,
        out_indices=(3, ),
        frozen_stages=4,
        norm_eval=True,
        norm_cfg=dict(type='BN', requires_grad=False),
        style='pytorch'),
    in_channels=2048,
    num_classes=1000,
    pretrained=None,
    data_preprocessor=dict(
        type='ImgDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True))
