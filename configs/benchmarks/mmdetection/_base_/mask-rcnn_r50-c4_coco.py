# Mask R-CNN R50-C4 on COCO with a DenseCL backbone (no schedule: see the
# 1x / 2x configs).
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50-caffe-c4.py', './coco_instance_ms.py',
    'mmdet::_base_/default_runtime.py'
]
model = dict(
    data_preprocessor=_base_.densecl_det_preprocessor,
    backbone=_base_.densecl_c4_backbone,
    roi_head=dict(shared_head=_base_.densecl_c4_shared_head),
    init_cfg=_base_.densecl_c4_init_cfg)
