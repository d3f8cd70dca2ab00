# `make demo`: DenseCL, ResNet-18, 80 px views (3 x 3 C5 grid), 160
# iterations x 16 images on the unlabeled demo pool. Same data, schedule and
# seed as the MoCo v2 config next to it; lambda (the dense loss weight) is 0
# for the first 16 iterations, then 0.5 (DenseCLHook).
_base_ = [
    '../_base_/models/densecl_r50.py',
    './_base_/pretrain_demo-pool.py',
]
custom_hooks = [dict(type='DenseCLHook', start_iters=16)]
model = _base_.demo_model
