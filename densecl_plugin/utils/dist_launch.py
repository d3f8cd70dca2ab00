# Copyright (c) densecl_plugin contributors. All rights reserved.
"""MMEngine's launchers (torchrun, Slurm, MPI) on GPUs and on CPUs, and a
restarted job that resumes by itself.

MMEngine 0.10.7 assumes CUDA once a launcher is named: ``init_dist`` calls
``torch.cuda.set_device(local_rank)`` (a CPU build of torch raises
``module 'torch._C' has no attribute '_cuda_setDevice'``) and the runner
wraps the model in DDP with ``device_ids=[LOCAL_RANK]`` (a CPU module
refuses them). Where CUDA is not available:

* :func:`adapt_to_device` sets ``env_cfg.dist_cfg.backend='gloo'`` (for an
  unset or ``'nccl'`` backend) and ``model_wrapper_cfg.device_ids=None``
  (MMEngine only *defaults* ``device_ids``, so an explicit ``None`` in the
  config wins; the config's own wrapper type and options are kept);
* :func:`init_launcher_dist` runs MMEngine's own ``init_dist`` for the
  launcher before the runner is built, with ``torch.cuda.set_device``
  made a no-op for that call only; the runner then finds the process group
  up and skips its ``init_dist``. It also starts the group of a process
  that torchrun restarted, on CPUs and GPUs, on a store of its own attempt
  (:func:`torchrun_restart_store`).

With CUDA nothing changes: NCCL and one device per local rank, as MMEngine
does it. Same configs, same commands.

A restarted job (torchrun ``--max-restarts``: ``TORCHELASTIC_RESTART_COUNT``;
a Slurm requeue or preemption: ``SLURM_RESTART_COUNT``) runs ``train.py``
again with the arguments of its first start; :func:`resume_after_restart`
points it at the newest intact checkpoint of its work dir.
"""
import datetime
import os
from contextlib import contextmanager
from typing import Iterator, Optional

import torch
from mmengine.config import Config
from mmengine.dist import init_dist, is_distributed
from mmengine.logging import print_log

from .checkpoint_integrity import resolve_resume

#: the environment variables that count a job's restarts
RESTART_VARS = ('TORCHELASTIC_RESTART_COUNT', 'SLURM_RESTART_COUNT')


def restart_count() -> int:
    """How many times the launcher has restarted this job (0: first start).

    The largest of ``TORCHELASTIC_RESTART_COUNT`` (torchrun) and
    ``SLURM_RESTART_COUNT`` (a requeued Slurm job); unset counts 0.
    """
    counts = [0]
    for var in RESTART_VARS:
        value = os.environ.get(var, '').strip()
        if value.isdigit():
            counts.append(int(value))
    return max(counts)


def job_id() -> Optional[str]:
    """What identifies this job across its restarts, or None.

    ``slurm:<SLURM_JOB_ID>`` in a Slurm job (a requeued job keeps its id);
    ``torchrun:<TORCHELASTIC_RUN_ID>`` under torchrun when ``--rdzv-id`` was
    given (torchrun's default id ``none`` identifies nothing).
    """
    slurm = os.environ.get('SLURM_JOB_ID')
    if slurm:
        return f'slurm:{slurm}'
    run = os.environ.get('TORCHELASTIC_RUN_ID')
    if run and run != 'none':
        return f'torchrun:{run}'
    return None


def slurm_master_port(launcher: str) -> Optional[int]:
    """Give an srun job a rendezvous port of its own (in ``os.environ``).

    MMEngine's ``slurm`` launcher uses ``MASTER_PORT``, else 29500: two
    jobs on one node then collide (``EADDRINUSE``). Where ``MASTER_PORT``
    is not set, it becomes ``20000 + (SLURM_JOB_ID * 8 + SLURM_STEP_ID) %
    20000``, the same in every task of a step, different for the jobs and
    steps that can share a node.

    Returns:
        int | None: the port set here.
    """
    job = os.environ.get('SLURM_JOB_ID', '')
    if launcher != 'slurm' or 'MASTER_PORT' in os.environ or \
            not job.isdigit():
        return None
    step = os.environ.get('SLURM_STEP_ID', '0')
    step = int(step) if step.isdigit() else 0
    port = 20000 + (int(job) * 8 + step) % 20000
    os.environ['MASTER_PORT'] = str(port)
    return port


def adapt_to_device(cfg: Config) -> None:
    """Make a launched run's config fit a machine without CUDA (in place).

    Nothing changes with ``launcher='none'`` or where CUDA is available.
    Otherwise the backend becomes ``'gloo'`` (an unset or ``'nccl'``
    backend; ``'gloo'`` and ``'mpi'`` are kept) and the DDP wrapper gets
    ``device_ids=None``: a missing ``model_wrapper_cfg`` becomes what the
    runner builds by default (``MMDistributedDataParallel``,
    ``broadcast_buffers=False``, the config's ``find_unused_parameters``),
    an existing one keeps its type and options.

    Raises:
        ValueError: a backend that needs CUDA other than ``'nccl'``.
    """
    if cfg.get('launcher', 'none') == 'none' or torch.cuda.is_available():
        return
    if cfg.get('env_cfg') is None:
        cfg.env_cfg = {}
    if cfg.env_cfg.get('dist_cfg') is None:
        cfg.env_cfg.dist_cfg = {}
    dist_cfg = cfg.env_cfg.dist_cfg
    backend = dist_cfg.get('backend', 'nccl')
    if backend == 'nccl':
        dist_cfg['backend'] = 'gloo'
    elif backend not in ('gloo', 'mpi'):
        raise ValueError(
            f'env_cfg.dist_cfg.backend={backend!r} needs a GPU, and CUDA is '
            f'not available here; use "gloo" (or leave it unset).')
    wrapper = cfg.get('model_wrapper_cfg')
    if wrapper is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel', broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False),
            device_ids=None)
    else:
        wrapper.setdefault('device_ids', None)


@contextmanager
def _no_cuda_set_device() -> Iterator[None]:
    real = torch.cuda.set_device
    torch.cuda.set_device = lambda device: None
    try:
        yield
    finally:
        torch.cuda.set_device = real


def torchrun_restart_store(timeout: float = 300.) -> Optional[dict]:
    """``init_process_group`` arguments for a process that torchrun
    restarted: the agent's store under a prefix of this attempt.

    torchrun hands its restarted processes the store of the first attempt
    (``TORCHELASTIC_USE_AGENT_STORE``), where the dead processes' keys are
    still set: a new rank may read a dead rank's gloo address and fail
    (``connectFullMesh ... Connection refused``) or NCCL id. Under a prefix
    per attempt (``densecl_plugin/attempt_<n>``) only this attempt's keys
    are seen.

    Returns:
        dict | None: ``store``, ``rank``, ``world_size``; None on a first
        start or outside torchrun.
    """
    count = os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')
    if not count.isdigit() or int(count) == 0 or 'MASTER_PORT' not in \
            os.environ:
        return None
    rank, world_size = int(os.environ['RANK']), int(os.environ['WORLD_SIZE'])
    agent = os.environ.get('TORCHELASTIC_USE_AGENT_STORE') == 'True'
    store = torch.distributed.TCPStore(
        os.environ['MASTER_ADDR'], int(os.environ['MASTER_PORT']),
        world_size, is_master=not agent and rank == 0,
        timeout=datetime.timedelta(seconds=timeout))
    return dict(store=torch.distributed.PrefixStore(
        f'densecl_plugin/attempt_{count}', store), rank=rank,
        world_size=world_size)


def init_launcher_dist(cfg: Config) -> bool:
    """Start the launcher's process group where MMEngine's runner cannot.

    Calls MMEngine's ``init_dist(cfg.launcher, **env_cfg.dist_cfg)``, which
    reads the launcher's variables (``RANK``/``LOCAL_RANK`` of torchrun,
    ``SLURM_PROCID``/``SLURM_NODELIST`` of srun, ``OMPI_COMM_WORLD_*``):

    * on a machine without CUDA, with ``torch.cuda.set_device`` a no-op for
      the call;
    * in a process that torchrun restarted (CPU or GPU), on this attempt's
      own store (:func:`torchrun_restart_store`).

    Otherwise (a first start with CUDA, ``launcher='none'``, a group
    already up) it does nothing: the runner initialises as usual.

    Returns:
        bool: whether the group was started here.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or is_distributed():
        return False
    dist_cfg = dict(cfg.get('env_cfg', {}).get('dist_cfg', {}))
    restart = torchrun_restart_store(dist_cfg.get('timeout') or 300) \
        if launcher == 'pytorch' else None
    if restart is not None:
        dist_cfg.update(restart)
    elif torch.cuda.is_available():
        return False
    if torch.cuda.is_available():
        init_dist(launcher, **dist_cfg)
    else:
        with _no_cuda_set_device():
            init_dist(launcher, **dist_cfg)
    return True


def close_launcher_dist() -> None:
    """End a launched run's process group: a barrier, then destroy it.

    A process that exits with its gloo group up may abort in the group's
    teardown (``terminate called without an active exception``) while the
    other ranks still talk to it, and srun / torchrun then report a failed
    task for a run that finished. ``tools/train.py`` calls this last.
    """
    if torch.distributed.is_available() and \
            torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def resume_after_restart(cfg: Config) -> Optional[str]:
    """Point a restarted job at the newest intact checkpoint (in place).

    On a first start (:func:`restart_count` 0) nothing changes. On a
    restart, the newest intact checkpoint of ``cfg.work_dir``
    (:func:`~densecl_plugin.utils.checkpoint_integrity.resolve_resume`,
    which skips and names a damaged one) becomes ``load_from`` with
    ``resume=True``, whatever the first start's ``--resume`` was; with no
    checkpoint yet the job starts over as it first did.

    Returns:
        str | None: the checkpoint resumed from.

    Raises:
        ResumeError: checkpoints exist but none is intact.
    """
    count = restart_count()
    if count == 0:
        return None
    found = resolve_resume(cfg.work_dir)
    if found is None:
        print_log(f'restart {count} of job {job_id() or "(no id)"}: no '
                  f'checkpoint in {cfg.work_dir} yet, starting over',
                  logger='current', level=30)
        return None
    print_log(f'restart {count} of job {job_id() or "(no id)"}: resuming '
              f'from {found}', logger='current', level=30)
    cfg.resume, cfg.load_from = True, found
    return found
