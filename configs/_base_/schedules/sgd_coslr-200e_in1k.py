# SGD, lr 0.03 for a total batch of 256, cosine to 0 over 200 epochs.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.03, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=200, by_epoch=True, begin=0, end=200)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=200)
# MMEngine's linear scaling from 256 (`tools/train.py --auto-scale-lr`);
# off by default (MMEngine's default, written out): the paper's values
auto_scale_lr = dict(enable=False, base_batch_size=256)
