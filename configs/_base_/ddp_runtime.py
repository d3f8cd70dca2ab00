# default_runtime.py for multi-GPU (DDP) pre-training of DenseCL / MoCo v2.
_base_ = ['./default_runtime.py']
# every parameter reaches the loss: DDP needs no unused-parameter search
find_unused_parameters = False
# the queues (buffers) are identical on every rank by construction: do not
# broadcast them (2 x 32 MiB) from rank 0 at every step
model_wrapper_cfg = dict(type='MMDistributedDataParallel',
                         broadcast_buffers=False)
