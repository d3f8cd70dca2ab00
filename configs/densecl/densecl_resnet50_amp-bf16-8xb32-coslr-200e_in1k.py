# DenseCL with bfloat16 mixed precision on GPUs (Ampere or newer). bfloat16
# has float32's exponent range, so the loss is not scaled (a static scale
# of 1); the scaler still skips steps whose gradients are not finite.
_base_ = ['./densecl_resnet50_8xb32-coslr-200e_in1k.py']
optim_wrapper = dict(type='AmpOptimWrapper', dtype='bfloat16',
                     loss_scale=1.)
