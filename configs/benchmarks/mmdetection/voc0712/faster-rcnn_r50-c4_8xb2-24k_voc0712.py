# Faster R-CNN R50-C4 on VOC07+12 trainval, tested on VOC07 test, 24k
# iterations, 8 GPUs x 2 images: the MoCo / DenseCL VOC detection protocol
# (detectron2 `pascal_voc_R_50_C4_24k_moco.yaml`) in mmdet 3.x.
#
# Differences from mmselfsup 1.x's `faster-rcnn_r50-c4_ms-24k_voc0712.py`:
# - the RGB / ImageNet-std preprocessor is set INSIDE `model` (mmselfsup's
#   top-level `data_preprocessor` was ignored, so it trained on caffe-style
#   BGR inputs);
# - one option loads backbone AND shared-head res5 from any checkpoint layout;
# - VOC AP50 and COCO-style AP (IoU 0.50:0.95, what the papers report) from
#   one VOCMetric: `pascal_voc/AP50`, `pascal_voc/AP75`, `pascal_voc/mAP`.
_base_ = [
    'mmdet::pascal_voc/faster-rcnn_r50-caffe-c4_ms-18k_voc0712.py',
    '../_base_/densecl_r50.py'
]
model = dict(
    data_preprocessor=_base_.densecl_det_preprocessor,
    backbone=_base_.densecl_c4_backbone,
    roi_head=dict(shared_head=_base_.densecl_c4_shared_head),
    init_cfg=_base_.densecl_c4_init_cfg)

# VOC2007 and VOC2012 differ in metainfo['dataset_type'] only
train_dataloader = dict(dataset=dict(ignore_keys=['dataset_type']))

# 24k iterations: warm-up 100, lr x0.1 at 18k and 22k
max_iter = 24000
train_cfg = dict(max_iters=max_iter, val_interval=2000)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=100),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_iter,
        by_epoch=False,
        milestones=[18000, 22000],
        gamma=0.1)
]
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=2000))

# VOC07 11-point AP at IoU 0.50, 0.55, ..., 0.95; `mAP` is their mean
# (COCO-style AP), `AP50` the classic VOC metric
val_evaluator = dict(
    type='VOCMetric',
    metric='mAP',
    eval_mode='11points',
    iou_thrs=[0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95])
test_evaluator = val_evaluator
