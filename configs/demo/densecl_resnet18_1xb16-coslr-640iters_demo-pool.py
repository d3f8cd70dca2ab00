# `make demo`: DenseCL, ResNet-18, 80 px views (3 x 3 C5 grid), 640
# iterations x 16 images on the unlabeled demo pool (405 real images that
# `make demo` writes): the CPU config with its small-data recipe (on the
# pool its 'auto' values resolve to queue 64, split BN in 2 groups, lr
# 0.0075; m = 0.99), in bf16 autocast with channels-last. Same data,
# schedule and seed as the MoCo v2 config next to it; lambda (the dense loss
# weight) is 0 for the first 64 iterations ('auto': a tenth of the run),
# then 0.5 (DenseCLHook).
_base_ = [
    '../densecl/densecl_resnet18_amp-bf16-1xb16-coslr-640iters_folder-cpu.py'
]
model = dict(channels_last=True)  # with bf16 autocast: ~2x faster on a CPU
# the demo measures correspondences itself; the CPU config's
# CorrespondenceHook is left out
custom_hooks = [dict(type='DenseCLHook', start_iters='auto')]
default_hooks = dict(
    checkpoint=dict(interval=640, max_keep_ckpts=1, save_last=True))
