# Copyright (c) densecl_plugin contributors. All rights reserved.
"""What ``tools/train.py`` does, importable and tested.

:func:`build_train_config` turns the command-line options into a
:class:`~mmengine.config.Config`; :func:`train` builds MMEngine's runner
from it and trains. Any config works: ours (``default_scope='densecl_plugin'``)
and the mmdet/mmseg benchmark configs (their own ``default_scope``).
"""
import os
import os.path as osp
from typing import Optional, Union

import torch
from mmengine.config import Config, DictAction  # noqa: F401 (re-exported)
from mmengine.runner import Runner

from densecl_plugin.engine.hooks.rng_state_hook import RNGStateHook
from densecl_plugin.utils.auto_values import resolve_auto_values
from densecl_plugin.utils.checkpoint_integrity import (check_resume_file,
                                                       resolve_resume)
from densecl_plugin.utils.dist_launch import (adapt_to_device,
                                              init_launcher_dist,
                                              resume_after_restart,
                                              slurm_master_port)
from densecl_plugin.utils.work_dir_lock import WorkDirLock

#: optim wrapper used by ``--amp`` where no GPU is present (bfloat16 autocast)
CPU_AMP_WRAPPER = 'densecl_plugin.CPUAmpOptimWrapper'


def build_train_config(config: str,
                       work_dir: Optional[str] = None,
                       resume: Union[None, bool, str] = None,
                       amp: bool = False,
                       auto_scale_lr: bool = False,
                       cfg_options: Optional[dict] = None,
                       launcher: str = 'none') -> Config:
    """Load ``config`` and apply the command-line options to it.

    Args:
        config (str): path of the config file.
        work_dir (str, optional): where logs and checkpoints go. Defaults to
            the config's ``work_dir``, else ``./work_dirs/<config name>``.
        resume (bool | str, optional): ``'auto'``/``True`` resumes from the
            latest checkpoint in ``work_dir``; a path resumes from that file.
            Defaults to None (no resume).
        amp (bool): train with automatic mixed precision: float16 with
            dynamic loss scaling on GPU, bfloat16 autocast on CPU. Defaults
            to False.
        auto_scale_lr (bool): scale the learning rate by the actual batch
            over ``auto_scale_lr.base_batch_size``. Defaults to False.
        cfg_options (dict, optional): overrides in ``key=value`` form, as
            ``--cfg-options`` gives them. Defaults to None.
        launcher (str): ``'none'``, ``'pytorch'`` (torchrun), ``'slurm'`` or
            ``'mpi'``. Defaults to ``'none'``.

    Returns:
        Config: the config to build the runner from.
    """
    if not osp.isfile(config):
        raise FileNotFoundError(f'config file not found: {config}')
    cfg = Config.fromfile(config)
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    # `default_hooks.X=None` switches hook X off; MMEngine accepts that only
    # for its own six names (an AssertionError for ours: atomic_save,
    # non_finite, sanity)
    for name, hook in list(cfg.get('default_hooks', {}).items()):
        if hook is None:
            cfg.default_hooks.pop(name)

    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config))[0])

    if amp:
        wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if wrapper in ('AmpOptimWrapper', CPU_AMP_WRAPPER,
                       'CPUAmpOptimWrapper'):
            pass  # the config already asks for mixed precision
        elif wrapper != 'OptimWrapper':
            raise ValueError(f'--amp needs optim_wrapper.type="OptimWrapper" '
                             f'in {config}, got {wrapper!r}')
        elif torch.cuda.is_available():
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
        else:
            cfg.optim_wrapper.type = CPU_AMP_WRAPPER

    if auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in \
                cfg.auto_scale_lr:
            raise ValueError(f'--auto-scale-lr needs `auto_scale_lr = dict('
                             f'base_batch_size=...)` in {config}')
        cfg.auto_scale_lr.enable = True

    if resume in ('auto', True):
        cfg.resume, cfg.load_from = True, None
    elif resume:
        if not osp.isfile(resume):
            raise FileNotFoundError(f'--resume checkpoint not found: {resume}')
        cfg.resume, cfg.load_from = True, resume
    return cfg


def resolve_auto_resume(cfg: Config) -> None:
    """Point an automatic resume at the newest intact checkpoint.

    With ``resume=True`` and no ``load_from``, MMEngine loads whatever
    ``work_dir/last_checkpoint`` names. Here that file is checked first
    (:func:`~densecl_plugin.utils.checkpoint_integrity.resolve_resume`): a
    corrupt or missing newest checkpoint, or a ``last_checkpoint`` that
    names nothing or holds garbage, is reported by name and the newest
    intact checkpoint is used instead; none intact raises
    :class:`~densecl_plugin.utils.checkpoint_integrity.ResumeError` with
    the way out. An explicit ``load_from`` is checked as it is.
    """
    if not cfg.get('resume', False):
        return
    if cfg.get('load_from'):
        if osp.isfile(cfg.load_from):
            check_resume_file(cfg.load_from)
        return
    found = resolve_resume(cfg.work_dir)
    if found is not None:
        cfg.load_from = found


def launch_rank(launcher: str = 'none') -> int:
    """This process's global rank, read before the runner initialises
    distributed training.

    ``torchrun`` sets ``RANK``; ``srun`` (``--launcher slurm``) and
    ``mpirun`` (``--launcher mpi``) set only ``SLURM_PROCID`` /
    ``OMPI_COMM_WORLD_RANK`` until MMEngine's ``init_dist`` copies them to
    ``RANK``, so those are read for those launchers.

    Args:
        launcher (str): the config's ``launcher``. Defaults to ``'none'``.

    Returns:
        int: the rank (0 where nothing says otherwise).
    """
    var = {'slurm': 'SLURM_PROCID', 'mpi': 'OMPI_COMM_WORLD_RANK'}.get(
        launcher, 'RANK')
    return int(os.environ.get(var, os.environ.get('RANK', '0')))


def train(cfg: Config) -> Runner:
    """Build the runner of ``cfg`` (``runner_type`` honoured) and train.

    A launched run (torchrun, Slurm, MPI) on a machine without CUDA gets
    gloo and a DDP wrapper without device ids, and its process group is
    started here (:mod:`densecl_plugin.utils.dist_launch`); with CUDA,
    MMEngine's NCCL and one device per local rank are kept.

    The work dir is locked for the run
    (:class:`~densecl_plugin.utils.work_dir_lock.WorkDirLock`: a second run
    in a work dir that a live run is writing is refused, a stale lock, or
    the lock of an earlier attempt of the same job, is taken over) on the
    main process only (:func:`launch_rank` 0). A job that its launcher
    restarted resumes from the newest intact checkpoint
    (:func:`~densecl_plugin.utils.dist_launch.resume_after_restart`), and an
    automatic resume is pointed at the newest intact checkpoint
    (:func:`resolve_auto_resume`). Every run saves and, on resume, restores
    each rank's torch generators
    (:class:`~densecl_plugin.engine.hooks.rng_state_hook.RNGStateHook`), so
    the losses after a resume equal an uninterrupted run's.

    Returns:
        Runner: the runner, after training.
    """
    slurm_master_port(cfg.get('launcher', 'none'))
    adapt_to_device(cfg)
    resolve_auto_values(cfg)  # 'auto' values, before the Runner is built
    main = launch_rank(cfg.get('launcher', 'none')) == 0
    lock = WorkDirLock(cfg.work_dir) if main else None
    if lock is not None:
        lock.acquire()
    try:
        resume_after_restart(cfg)
        resolve_auto_resume(cfg)
        init_launcher_dist(cfg)
        if 'runner_type' in cfg:
            from mmengine.registry import RUNNERS
            runner = RUNNERS.build(cfg)
        else:
            runner = Runner.from_cfg(cfg)
        if not any(isinstance(h, RNGStateHook) for h in runner.hooks):
            runner.register_hook(RNGStateHook())
        runner.train()
    finally:
        if lock is not None:
            lock.release()
    return runner
