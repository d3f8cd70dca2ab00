# Any folder of images (recursive), small MoCo v2 views for CPU runs.
# Point it elsewhere with
#   --cfg-options train_dataloader.dataset.data_root=path/to/images
_base_ = ['./mocov2_pipeline.py']

# The views of mocov2_pipeline.py cropped at 80 px (ResNet-18's C5 grid is
# then 3 x 3: 80 -> 40 -> 20 -> 20 -> 10 -> 5 -> 3): only RandomResizedCrop's
# `size` changes, every other step and parameter is the one written there.
crop_size = 80
view_pipeline = [dict(t, size=crop_size) if t.type == 'RandomResizedCrop'
                 else t for t in _base_.view_pipeline]
# mocov2_pipeline.py's train_pipeline, its MultiView making these views
train_pipeline = [dict(t, transforms=[view_pipeline]) if t.type == 'MultiView'
                  else t for t in _base_.train_pipeline]
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
