# `make demo`: MoCo v2, ResNet-18, 80 px views, 160 iterations x 16 images
# on the unlabeled demo pool: the baseline, with DenseCL's data, schedule and
# seed.
_base_ = [
    '../_base_/models/mocov2_r50.py',
    './_base_/pretrain_demo-pool.py',
]
model = _base_.demo_model
