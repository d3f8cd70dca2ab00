# ImageNet-1k train split, unlabeled: data/imagenet/train/<wnid>/*.JPEG
# (a list file works too: ann_file='meta/train.txt').
_base_ = ['./mocov2_pipeline.py']
train_dataloader = dict(
    batch_size=32,
    num_workers=8,
    drop_last=True,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='UnlabeledImageDataset',
        data_root='data/imagenet/',
        data_prefix=dict(img_path='train/'),
        pipeline={{_base_.train_pipeline}}))
