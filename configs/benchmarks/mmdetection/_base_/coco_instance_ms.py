# mmdet's COCO instance segmentation data with multi-scale training
# (shorter side 640..800), as in the MoCo / DenseCL COCO protocol.
_base_ = [
    'mmdet::_base_/datasets/coco_instance.py', './densecl_r50.py'
]
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=_base_.backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='RandomChoiceResize',
        scales=_base_.densecl_coco_ms_scales,
        keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
