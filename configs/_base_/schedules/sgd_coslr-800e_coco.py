# The authors' COCO recipe: SGD lr 0.3 for a total batch of 256, cosine over
# 800 epochs (WXinlong/DenseCL configs/selfsup/densecl/densecl_coco_800ep.py).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.3, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=800, by_epoch=True, begin=0, end=800)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=800)
auto_scale_lr = dict(base_batch_size=256)
