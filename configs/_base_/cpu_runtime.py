# default_runtime.py for one process on a CPU (the CPU and demo configs):
# iteration-based logs every 10 iterations, gloo for any collective, and a
# fixed seed.
_base_ = ['./default_runtime.py']
default_hooks = dict(logger=dict(type='LoggerHook', interval=10))
log_processor = dict(by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
