# A short iteration-based cosine schedule for CPU runs.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.03, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=200, by_epoch=False, begin=0,
         end=200)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=200)
auto_scale_lr = dict(base_batch_size=16)
