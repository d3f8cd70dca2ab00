# COCO train2017 images, unlabeled: data/coco/train2017/*.jpg
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
        data_root='data/coco/',
        data_prefix=dict(img_path='train2017/'),
        pipeline={{_base_.train_pipeline}}))
