# Linear probe of a pre-trained ResNet-18 on any class-folder tree, small
# enough for a CPU:
#   <data_root>/train/<class>/*.png   <data_root>/val/<class>/*.png
#   python tools/train.py THIS_CONFIG --cfg-options \
#       train_dataloader.dataset.data_root=data/my_set \
#       val_dataloader.dataset.data_root=data/my_set \
#       model.num_classes=N model.pretrained=work_dirs/.../epoch_200.pth
# The ImageNet protocol (frozen backbone, SGD lr 30, momentum 0.9, no weight
# decay, lr x0.1 at 60% and 80% of training) at 64 px for 10 epochs.
_base_ = [
    '../_base_/models/resnet50_linear.py',
    '../_base_/datasets/imagenet_bs32_linear.py',
    '../_base_/schedules/sgd_steplr-100e.py',
    '../../../_base_/default_runtime.py',
]
data_root = 'data/demo/labelled/'
num_classes = 2
crop = 64

model = dict(
    backbone=dict(depth=18),
    in_channels=512,
    num_classes=num_classes)

train_pipeline = [
    dict(type='mmcv.LoadImageFromFile'),
    dict(type='RandomResizedCrop', size=crop, scale=(0.08, 1.)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackClsInputs'),
]
test_pipeline = [
    dict(type='mmcv.LoadImageFromFile'),
    dict(type='ResizeEdge', scale=crop * 8 // 7, edge='short'),
    dict(type='mmcv.CenterCrop', crop_size=crop),
    dict(type='PackClsInputs'),
]
train_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root, ann_file='', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

param_scheduler = [
    dict(type='MultiStepLR', by_epoch=True, milestones=[6, 8], gamma=0.1)
]
train_cfg = dict(max_epochs=10, val_interval=10)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=10))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
