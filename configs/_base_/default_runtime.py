default_scope = 'densecl_plugin'

default_hooks = dict(
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # ours (densecl_plugin.engine.hooks), on in every pre-training config:
    # checkpoints written to a temporary file, fsync'ed, then renamed
    atomic_save=dict(type='AtomicSaveHook'),
    # stop at the first NaN/inf loss term, weight or queue; never save one
    # (loss terms every iteration and weights before every save; weights and
    # queues every 10 iterations: 0.4% of a small CPU step, docs/faults.md)
    non_finite=dict(type='NonFiniteCheckHook', interval=10),
    # start-of-run warnings: small data, large queue, no split BN, coarse
    # dense grid, no lambda warm-up, lr off the linear scaling rule
    sanity=dict(type='PretrainingSanityHook'),
    # tells the model which iterations compute its health metrics
    # (model.health_interval), from runner.iter: resumed runs keep the schedule
    health=dict(type='HealthHook'),
)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

log_processor = dict(window_size=10)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=None, deterministic=False)
