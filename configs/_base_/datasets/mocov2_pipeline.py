# The MoCo v2 two-view augmentation (Chen et al., 2020), as DenseCL uses it.
# This file is its one definition: a config with other view sizes inherits
# it and changes `crop_size` only (folder_mocov2_cpu.py shows how), and
# tests/test_configs/test_view_pipeline.py checks that every pre-training
# config's views are these.
crop_size = 224
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
    dict(type='PackSelfSupInputs', meta_keys=('img_path', 'sample_idx')),
]
