# Mask R-CNN R50-FPN on COCO with a DenseCL backbone (no schedule: see the
# 1x / 2x configs): SyncBN in the backbone, FPN and both heads, and a
# 4conv-1fc box head (MoCo / DenseCL detectron2 protocol).
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py', './coco_instance_ms.py',
    'mmdet::_base_/default_runtime.py'
]
model = dict(
    data_preprocessor=_base_.densecl_det_preprocessor,
    backbone=_base_.densecl_fpn_backbone,
    neck=dict(norm_cfg=_base_.densecl_norm_cfg),
    roi_head=dict(
        bbox_head=dict(
            type='Shared4Conv1FCBBoxHead',
            conv_out_channels=256,
            norm_cfg=_base_.densecl_norm_cfg),
        mask_head=dict(norm_cfg=_base_.densecl_norm_cfg)),
    init_cfg=_base_.densecl_init_cfg)
