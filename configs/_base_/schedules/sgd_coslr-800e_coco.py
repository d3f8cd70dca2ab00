# The authors' COCO recipe: the ImageNet schedule (sgd_coslr-200e_in1k.py:
# SGD, momentum 0.9, weight decay 1e-4, total batch 256) with lr 0.3 and a
# cosine over 800 epochs
# (WXinlong/DenseCL configs/selfsup/densecl/densecl_coco_800ep.py).
_base_ = ['./sgd_coslr-200e_in1k.py']
optim_wrapper = dict(optimizer=dict(lr=0.3))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=800, by_epoch=True, begin=0, end=800)
]
train_cfg = dict(max_epochs=800)
