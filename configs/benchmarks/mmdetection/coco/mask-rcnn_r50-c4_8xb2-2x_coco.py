# Mask R-CNN R50-C4, COCO, 2x (24 epochs, steps 16/22), 8 GPUs x 2 images.
_base_ = [
    '../_base_/mask-rcnn_r50-c4_coco.py',
    'mmdet::_base_/schedules/schedule_2x.py'
]
