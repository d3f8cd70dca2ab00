# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Only the main process takes the work-dir lock, whatever the launcher:
before ``init_dist`` srun and mpirun set no ``RANK``, so a rank > 0 that
read ``RANK`` alone would lock too and be refused by rank 0's live lock."""
import importlib

import pytest
from mmengine.config import Config

from densecl_plugin.apis.train import launch_rank
from densecl_plugin.utils.work_dir_lock import LOCK_NAME, WorkDirLockedError

# the module (``densecl_plugin.apis.train`` is also the function's name)
train_mod = importlib.import_module('densecl_plugin.apis.train')
RANK_VARS = ('RANK', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK')


@pytest.mark.parametrize('launcher,var', [('pytorch', 'RANK'),
                                          ('none', 'RANK'),
                                          ('slurm', 'SLURM_PROCID'),
                                          ('mpi', 'OMPI_COMM_WORLD_RANK')])
def test_launch_rank_reads_the_launchers_variable(monkeypatch, launcher, var):
    for v in RANK_VARS:
        monkeypatch.delenv(v, raising=False)
    assert launch_rank(launcher) == 0
    monkeypatch.setenv(var, '3')
    assert launch_rank(launcher) == 3


def test_a_slurm_rank_1_does_not_take_the_lock(tmp_path, monkeypatch):
    """A live lock (this process's, as rank 0's would be on this host):
    rank 1 of srun must not try to lock; it goes on to build the runner."""
    for v in RANK_VARS:
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv('SLURM_PROCID', '1')
    (tmp_path / LOCK_NAME).write_text(
        '{"pid": 1, "hostname": "%s"}' % __import__('socket').gethostname())

    class Built(Exception):
        pass

    def from_cfg(cfg):
        raise Built

    monkeypatch.setattr(train_mod.Runner, 'from_cfg', staticmethod(from_cfg))
    # no srun here to start a process group from (the launchers' own tests:
    # tests/test_apis/test_launchers.py)
    monkeypatch.setattr(train_mod, 'init_launcher_dist', lambda cfg: False)
    cfg = Config(dict(work_dir=str(tmp_path), launcher='slurm'))
    with pytest.raises(Built):
        train_mod.train(cfg)
    monkeypatch.setenv('SLURM_PROCID', '0')  # rank 0 meets the live lock
    with pytest.raises(WorkDirLockedError):
        train_mod.train(cfg)
