# DenseCL, ResNet-50 (Wang et al., CVPR 2021): MoCo v2 (mocov2_r50.py: the
# same ResNet-50 with its pre-training choices, data preprocessor, queue,
# momentum m = 0.999 and head) plus a dense branch and loss, weighted by
# `loss_lambda`.
_base_ = ['./mocov2_r50.py']
model = dict(
    type='DenseCL',
    loss_lambda=0.5,
    # MoCoV2Neck's global MLP (same sizes) plus the dense 1x1-conv MLP on
    # every cell of the backbone's S x S grid (num_grid=None: not pooled)
    neck=dict(type='DenseCLNeck', num_grid=None),
)
