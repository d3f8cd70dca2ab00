# DenseCL with mixed precision on GPUs: float16 autocast with dynamic loss
# scaling. The InfoNCE losses compute their logits and softmax in float32
# either way (densecl_plugin/models/losses/queue_infonce_loss.py).
_base_ = ['./densecl_resnet50_8xb32-coslr-200e_in1k.py']
optim_wrapper = dict(type='AmpOptimWrapper', dtype='float16',
                     loss_scale='dynamic')
