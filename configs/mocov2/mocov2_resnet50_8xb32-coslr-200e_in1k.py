# MoCo v2, ResNet-50, 8 GPUs x 32 images, cosine lr, 200 epochs on ImageNet-1k.
# Logs every 50 iterations, keeps the last 3 checkpoints of every 10th epoch
# (default_runtime.py); DDP without buffer broadcasts (ddp_runtime.py).
_base_ = [
    '../_base_/models/mocov2_r50.py',
    '../_base_/datasets/imagenet_mocov2.py',
    '../_base_/schedules/sgd_coslr-200e_in1k.py',
    '../_base_/ddp_runtime.py',
]
