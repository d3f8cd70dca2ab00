# Mask R-CNN R50-C4, COCO, 1x (12 epochs, steps 8/11), 8 GPUs x 2 images.
_base_ = [
    '../_base_/mask-rcnn_r50-c4_coco.py',
    'mmdet::_base_/schedules/schedule_1x.py'
]
