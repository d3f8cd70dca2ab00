# A short iteration-based cosine schedule for CPU runs on a few hundred
# images: 640 iterations x 16 (25 epochs of the demo's 405-image pool).
# lr='auto': 0.03 at a total batch of 256, scaled by the square-root rule
# (0.03 x sqrt(total / 256): 0.0075 at 16, one process), which the
# small-data search supports (docs/auto_values.md); an explicit lr wins.
# On the demo pool 160 iterations did not learn at any lr tried, 320 learned
# little, 640 learned by all three measures of docs/pretraining_health.md
# ("A small-data recipe").
max_iters = 640
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr='auto', momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_iters, by_epoch=False, begin=0,
         end=max_iters)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
# base_lr and rule are ours (densecl_plugin.utils.auto_values); MMEngine's
# Runner reads enable and base_batch_size, and scales linearly only
auto_scale_lr = dict(enable=False, base_batch_size=256, base_lr=0.03,
                     rule='sqrt')
