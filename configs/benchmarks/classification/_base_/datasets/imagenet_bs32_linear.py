# ImageNet for the linear protocol: RandomResizedCrop 224 + flip for
# training; short side 256 + centre crop 224 for testing.
#   data/imagenet/train/<wnid>/*.JPEG       class folders
#   data/imagenet/val/*.JPEG + meta/val.txt  "<file> <label>" per line
# (for a val/ of class folders: val_dataloader.dataset.ann_file='')
custom_imports = dict(
    imports=['densecl_plugin.evaluation', 'densecl_plugin.datasets'],
    allow_failed_imports=False)
dataset_type = 'ClassFolderDataset'
data_root = 'data/imagenet/'

train_pipeline = [
    dict(type='mmcv.LoadImageFromFile'),
    dict(type='RandomResizedCrop', size=224, scale=(0.08, 1.)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackClsInputs'),
]
test_pipeline = [
    dict(type='mmcv.LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short'),
    dict(type='mmcv.CenterCrop', crop_size=224),
    dict(type='PackClsInputs'),
]

train_dataloader = dict(
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix='train',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix='val',
        ann_file='meta/val.txt',
        pipeline=test_pipeline))
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_dataloader = val_dataloader
test_evaluator = val_evaluator
