# `make demo`: MoCo v2, ResNet-18, 80 px views, 640 iterations x 16 images on
# the unlabeled demo pool: the baseline, with DenseCL's data, recipe,
# schedule, precision and seed (the MoCo v2 CPU config in bf16 autocast
# with channels-last).
_base_ = ['../mocov2/mocov2_resnet18_1xb16-coslr-640iters_folder-cpu.py']
model = dict(channels_last=True)  # with bf16 autocast: ~2x faster on a CPU
# bfloat16 autocast (float32 weights, gradients and InfoNCE logits)
optim_wrapper = dict(type='CPUAmpOptimWrapper', dtype='bfloat16')
default_hooks = dict(
    checkpoint=dict(interval=640, max_keep_ckpts=1, save_last=True))
