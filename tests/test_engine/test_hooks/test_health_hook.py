# Copyright (c) densecl_plugin contributors. All rights reserved.
"""HealthHook in a real Runner: the health metrics come on the iterations
``(runner.iter + 1) % health_interval == 0``, also right after a resume (the
model's own step count would restart there), and the engine reads the model
through its documented contract."""
import pytest
import torch
from mmengine.hooks import Hook

from densecl_plugin.engine.hooks import HealthHook
from densecl_plugin.engine.hooks.model_contract import (contrast_model,
                                                        dense_model)
from tiny_models import RandomTwoViews, tiny_model_cfg, tiny_runner

TINY = dict(base_channels=8, hid_channels=16, feat_dim=8, queue_len=8,
            health_interval=2)


class HealthProbe(Hook):
    """Records the iterations whose outputs hold the health metrics."""

    priority = 'LOW'

    def __init__(self):
        self.iters = {}

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.iters[runner.iter] = 'health_pos_cos' in outputs


def _run(work_dir, max_iters, with_hook, resume=False, algo='MoCoV2'):
    probe = HealthProbe()
    runner = tiny_runner(
        work_dir, tiny_model_cfg(algo, **TINY), dataset=RandomTwoViews(),
        max_iters=max_iters, checkpoint_interval=3,
        custom_hooks=([dict(type='HealthHook')] if with_hook else [])
        + [probe], resume=resume, seed=None)
    runner.train()
    return probe.iters, runner


@pytest.mark.parametrize('algo', ['MoCoV2', 'DenseCL'])
def test_schedule_follows_runner_iter_across_a_resume(tmp_path, algo):
    work_dir = str(tmp_path)
    iters, runner = _run(work_dir, 3, with_hook=True, algo=algo)
    assert iters == {0: False, 1: True, 2: False}
    assert runner.model.health_due is None  # handed back after the step
    # resumed at iteration 3: due at 3 and 5, as in one uninterrupted run
    iters, _ = _run(work_dir, 6, with_hook=True, resume=True, algo=algo)
    assert iters == {3: True, 4: False, 5: True}


def test_without_the_hook_the_model_counts_its_own_steps(tmp_path):
    """The fallback (no HealthHook): right after a resume the model's count
    restarts, so the schedule shifts; the hook above is what keeps it."""
    work_dir = str(tmp_path)
    iters, _ = _run(work_dir, 3, with_hook=False)
    assert iters == {0: False, 1: True, 2: False}
    iters, _ = _run(work_dir, 6, with_hook=False, resume=True)
    assert iters == {3: False, 4: True, 5: False}


def test_health_interval_zero_is_never_due():
    from types import SimpleNamespace

    from densecl_plugin.registry import MODELS
    model = MODELS.build(tiny_model_cfg('MoCoV2', **dict(TINY, health_interval=0)))
    runner = SimpleNamespace(model=model, iter=1)
    HealthHook().before_train_iter(runner, 0)
    assert model.health_due is False
    HealthHook().before_train_iter(SimpleNamespace(model=torch.nn.Linear(1, 1), iter=1), 0)


def test_the_contract_attributes():
    from types import SimpleNamespace

    from densecl_plugin.registry import MODELS
    moco = MODELS.build(tiny_model_cfg('MoCoV2', **TINY))
    densecl = MODELS.build(tiny_model_cfg('DenseCL', loss_lambda=0.3, **TINY))
    assert (moco.queue_len, moco.is_dense, moco.loss_lambda) == (8, False, 0.)
    assert (densecl.queue_len, densecl.is_dense, densecl.loss_lambda) == (8, True, 0.3)
    assert moco.health_due is None and densecl.health_interval == 2
    assert contrast_model(SimpleNamespace(model=torch.nn.Linear(1, 1))) is None
    assert dense_model(SimpleNamespace(model=densecl), 'X', 'y') is densecl
    with pytest.raises(TypeError, match=r'X needs .*`y` attribute.*MoCoV2'):
        dense_model(SimpleNamespace(model=moco), 'X', 'y')


def test_every_pretraining_config_has_the_hook():
    import glob
    import os.path as osp

    from mmengine.config import Config
    root = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
    configs = sorted(glob.glob(osp.join(root, 'configs', '*', '*.py')))
    pretraining = [c for c in configs if osp.basename(osp.dirname(c))
                   in ('densecl', 'mocov2')]
    assert len(pretraining) >= 6
    for path in pretraining:
        assert Config.fromfile(path).default_hooks.health.type == 'HealthHook', path
