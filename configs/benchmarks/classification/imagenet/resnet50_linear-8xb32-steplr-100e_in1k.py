# ImageNet-1k linear evaluation of a pre-trained ResNet-50 (MoCo / DenseCL
# protocol; DenseCL 200 epochs reaches 63.5-63.6 top-1 under it):
#   bash tools/dist_train.sh THIS_CONFIG 8 \
#       --cfg-options model.pretrained=work_dirs/densecl/epoch_200.pth
_base_ = [
    '../_base_/models/resnet50_linear.py',
    '../_base_/datasets/imagenet_bs32_linear.py',
    '../_base_/schedules/sgd_steplr-100e.py',
    '../../../_base_/default_runtime.py',
]

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100),
    checkpoint=dict(
        type='CheckpointHook', interval=10, max_keep_ckpts=3,
        save_best='accuracy/top1', rule='greater'))
