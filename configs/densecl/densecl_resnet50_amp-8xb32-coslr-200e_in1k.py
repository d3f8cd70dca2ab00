# DenseCL with mixed precision: float16 with dynamic loss scaling (GPU). The
# dense loss computes its logits and softmax in float32 either way.
_base_ = ['./densecl_resnet50_8xb32-coslr-200e_in1k.py']
optim_wrapper = dict(type='AmpOptimWrapper', loss_scale='dynamic')
