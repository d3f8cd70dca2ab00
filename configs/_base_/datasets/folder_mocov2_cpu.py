# Any folder of images (recursive), small MoCo v2 views for CPU runs.
# Point it elsewhere with
#   --cfg-options train_dataloader.dataset.data_root=path/to/images
crop_size = 64
view_pipeline = [
    dict(type='RandomResizedCrop', size=crop_size, scale=(0.2, 1.)),
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4,
         hue=0.1, prob=0.8),
    dict(type='RandomGrayscale', prob=0.2),
    dict(type='GaussianBlur', sigma=(0.1, 2.0), prob=0.5),
    dict(type='RandomFlip', prob=0.5),
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
    dict(type='PackSelfSupInputs', meta_keys=('img_path', )),
]
train_dataloader = dict(
    batch_size=16,
    num_workers=0,
    drop_last=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='UnlabeledImageDataset',
        data_root='data/demo/unlabeled/',
        pipeline=train_pipeline))
