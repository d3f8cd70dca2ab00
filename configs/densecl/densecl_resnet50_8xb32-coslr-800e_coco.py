# DenseCL, ResNet-50, 8 GPUs x 32 images, cosine lr 0.3, 800 epochs on COCO
# train2017 (the authors' COCO recipe; 462 iterations per epoch).
_base_ = [
    '../_base_/models/densecl_r50.py',
    '../_base_/datasets/coco_mocov2.py',
    '../_base_/schedules/sgd_coslr-800e_coco.py',
    '../_base_/ddp_runtime.py',
]
# a checkpoint every 20 epochs, the last 3 kept (default_runtime.py: 10)
default_hooks = dict(checkpoint=dict(interval=20))
