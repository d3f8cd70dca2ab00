# A short iteration-based cosine schedule for CPU runs on a few hundred
# images: 640 iterations x 16 (25 epochs of the demo's 405-image pool), lr
# 0.0075 (the square-root scaling rule from 0.03 at 256: 0.03 / sqrt(16)).
# On the demo pool 160 iterations did not learn at any lr tried, 320 learned
# little, 640 learned by all three measures of docs/pretraining_health.md
# ("A small-data recipe").
max_iters = 640
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.0075, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_iters, by_epoch=False, begin=0,
         end=max_iters)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
auto_scale_lr = dict(base_batch_size=16)
