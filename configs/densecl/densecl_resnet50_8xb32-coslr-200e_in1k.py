# DenseCL, ResNet-50, 8 GPUs x 32 images, cosine lr, 200 epochs on ImageNet-1k.
_base_ = [
    '../_base_/models/densecl_r50.py',
    '../_base_/datasets/imagenet_mocov2.py',
    '../_base_/schedules/sgd_coslr-200e_in1k.py',
    '../_base_/default_runtime.py',
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
# every parameter reaches the loss: DDP needs no unused-parameter search
find_unused_parameters = False
# the queues (buffers) are identical on every rank by construction: do not
# broadcast them (2 x 32 MiB) from rank 0 at every step
model_wrapper_cfg = dict(type='MMDistributedDataParallel',
                         broadcast_buffers=False)
