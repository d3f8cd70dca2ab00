# Copyright (c) densecl_plugin contributors. All rights reserved.
"""dist_launch: the launched config on a machine without CUDA, the real
process group it starts, restarts that resume, and the work-dir lock of a
restarted job. The launchers themselves: tests/test_apis/test_launchers.py.
"""
import json
import os
import socket

import pytest
import torch
from mmengine.config import Config

from densecl_plugin.utils import dist_launch
from densecl_plugin.utils.dist_launch import (adapt_to_device,
                                              init_launcher_dist, job_id,
                                              restart_count,
                                              resume_after_restart,
                                              slurm_master_port)
from densecl_plugin.utils.work_dir_lock import (LOCK_NAME, WorkDirLock,
                                                WorkDirLockedError)

LAUNCH_VARS = ('TORCHELASTIC_RESTART_COUNT', 'SLURM_RESTART_COUNT',
               'SLURM_JOB_ID', 'TORCHELASTIC_RUN_ID', 'SLURM_STEP_ID',
               'MASTER_PORT')


@pytest.fixture
def clean_env(monkeypatch):
    for var in LAUNCH_VARS:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_cpu_config_gets_gloo_and_no_device_ids(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    cfg = Config(dict(launcher='pytorch', find_unused_parameters=True))
    adapt_to_device(cfg)
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model_wrapper_cfg == dict(
        type='MMDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=True, device_ids=None)
    # the config's own wrapper and backend options are kept
    cfg = Config(dict(launcher='slurm',
                      env_cfg=dict(dist_cfg=dict(backend='nccl',
                                                 timeout=60)),
                      model_wrapper_cfg=dict(type='MMDistributedDataParallel',
                                             broadcast_buffers=True)))
    adapt_to_device(cfg)
    assert cfg.env_cfg.dist_cfg == dict(backend='gloo', timeout=60)
    assert cfg.model_wrapper_cfg == dict(type='MMDistributedDataParallel',
                                         broadcast_buffers=True,
                                         device_ids=None)
    with pytest.raises(ValueError, match="backend='hccl' needs a GPU"):
        adapt_to_device(Config(dict(launcher='pytorch', env_cfg=dict(
            dist_cfg=dict(backend='hccl')))))


@pytest.mark.parametrize('launcher,cuda', [('none', False),
                                           ('pytorch', True)])
def test_one_process_or_gpus_keep_the_config(monkeypatch, launcher, cuda):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: cuda)
    cfg = Config(dict(launcher=launcher,
                      env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    adapt_to_device(cfg)
    assert cfg.env_cfg.dist_cfg.backend == 'nccl'
    assert 'model_wrapper_cfg' not in cfg
    assert init_launcher_dist(cfg) is False


def test_init_launcher_dist_starts_a_real_gloo_group(monkeypatch):
    """MMEngine's own init_dist for torchrun's variables, on this CPU
    torch (whose torch.cuda.set_device raises), one rank."""
    if torch.cuda.is_available():
        pytest.skip('the CPU path: CUDA is available here')
    with pytest.raises((AttributeError, RuntimeError, AssertionError)):
        torch.cuda.set_device(0)  # what MMEngine's init_dist would call
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    for k, v in dict(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1',
                     MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port)).items():
        monkeypatch.setenv(k, v)
    cfg = Config(dict(launcher='pytorch'))
    adapt_to_device(cfg)
    try:
        assert init_launcher_dist(cfg) is True
        assert torch.distributed.get_backend() == 'gloo'
        assert torch.distributed.get_world_size() == 1
        t = torch.ones(3)
        torch.distributed.all_reduce(t)
        assert t.tolist() == [1., 1., 1.]
        assert init_launcher_dist(cfg) is False  # already up
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    assert torch.cuda.set_device is not None
    with pytest.raises((AttributeError, RuntimeError, AssertionError)):
        torch.cuda.set_device(0)  # restored


def test_restart_count_and_job_id(clean_env):
    assert restart_count() == 0 and job_id() is None
    clean_env.setenv('TORCHELASTIC_RUN_ID', 'none')  # torchrun's default
    assert job_id() is None
    clean_env.setenv('TORCHELASTIC_RUN_ID', 'densecl-29500')
    clean_env.setenv('TORCHELASTIC_RESTART_COUNT', '2')
    assert job_id() == 'torchrun:densecl-29500' and restart_count() == 2
    clean_env.setenv('SLURM_JOB_ID', '17')
    clean_env.setenv('SLURM_RESTART_COUNT', '3')
    assert job_id() == 'slurm:17' and restart_count() == 3


def _ckpt(path):
    torch.save({'meta': {'iter': 1}}, str(path))
    return str(path)


def test_a_restart_resumes_from_the_newest_intact_checkpoint(tmp_path,
                                                             clean_env):
    cfg = Config(dict(work_dir=str(tmp_path), resume=False,
                      load_from='init.pth'))
    assert resume_after_restart(cfg) is None  # first start: untouched
    assert cfg.resume is False and cfg.load_from == 'init.pth'
    clean_env.setenv('SLURM_RESTART_COUNT', '1')
    assert resume_after_restart(cfg) is None  # nothing saved yet
    assert cfg.resume is False and cfg.load_from == 'init.pth'
    _ckpt(tmp_path / 'iter_2.pth')
    newest = _ckpt(tmp_path / 'iter_4.pth')
    (tmp_path / 'iter_6.pth').write_bytes(b'PK\x03\x04 cut short')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_6.pth'))
    assert resume_after_restart(cfg) == newest
    assert cfg.resume is True and cfg.load_from == newest


def _lock_info(work_dir, **info):
    with open(os.path.join(work_dir, LOCK_NAME), 'w') as f:
        json.dump(info, f)


def test_the_lock_of_an_earlier_attempt_of_the_same_job(tmp_path):
    """A requeued job may land on another host, and its own old lock says
    so; the same job's next attempt takes it over, nothing else does."""
    wd = str(tmp_path)
    other = dict(pid=1, hostname='another-node', job='slurm:17', restart=0)
    _lock_info(wd, **other)
    with pytest.raises(WorkDirLockedError, match='another-node'):
        WorkDirLock(wd, job='slurm:18', restart=1).acquire()
    with pytest.raises(WorkDirLockedError, match='another-node'):
        WorkDirLock(wd, job='slurm:17', restart=0).acquire()
    lock = WorkDirLock(wd, job='slurm:17', restart=1)
    lock.acquire()
    with open(os.path.join(wd, LOCK_NAME)) as f:
        info = json.load(f)
    assert info['pid'] == os.getpid() and info['job'] == 'slurm:17'
    assert info['restart'] == 1
    lock.release()
    # a live pid on this host of the same attempt: refused
    _lock_info(wd, pid=os.getppid(), hostname=socket.gethostname(),
               job='slurm:17', restart=1)
    with pytest.raises(WorkDirLockedError, match='is writing this work dir'):
        WorkDirLock(wd, job='slurm:17', restart=1).acquire()
    # no job id: the pid decides, as before
    with pytest.raises(WorkDirLockedError):
        WorkDirLock(wd, job=None, restart=5).acquire()


def test_lock_reads_the_launchers_variables(tmp_path, clean_env):
    clean_env.setenv('SLURM_JOB_ID', '5')
    clean_env.setenv('SLURM_RESTART_COUNT', '2')
    lock = WorkDirLock(str(tmp_path))
    assert (lock.job, lock.restart) == ('slurm:5', 2)
    assert dist_launch.RESTART_VARS == ('TORCHELASTIC_RESTART_COUNT',
                                        'SLURM_RESTART_COUNT')


def test_slurm_jobs_get_a_port_each(clean_env):
    assert slurm_master_port('slurm') is None  # not in a job
    clean_env.setenv('SLURM_JOB_ID', '41')
    assert slurm_master_port('pytorch') is None
    assert slurm_master_port('slurm') == 20000 + 41 * 8
    assert os.environ['MASTER_PORT'] == str(20000 + 41 * 8)
    clean_env.delenv('MASTER_PORT')
    clean_env.setenv('SLURM_JOB_ID', '42')
    clean_env.setenv('SLURM_STEP_ID', '1')
    assert slurm_master_port('slurm') == 20000 + 42 * 8 + 1
    clean_env.setenv('MASTER_PORT', '1234')  # the user's port wins
    assert slurm_master_port('slurm') is None
    assert os.environ['MASTER_PORT'] == '1234'
