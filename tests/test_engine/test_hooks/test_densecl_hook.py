# Copyright (c) densecl_plugin contributors. All rights reserved.
"""DenseCLHook in a real Runner: warm-up, restore, and right after resume."""
import os.path as osp
import socket
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as torch_dist
from mmengine.hooks import Hook

from densecl_plugin.engine.hooks import DenseCLHook
from tiny_models import RandomTwoViews, tiny_model_cfg, tiny_runner

#: a ResNet-18 of width 8 (with mmdet's zero-init residuals, as before the
#: tiny models were shared), inputs already float tensors
TINY_DENSECL = tiny_model_cfg(
    'DenseCL', base_channels=8, hid_channels=16, feat_dim=8, queue_len=8,
    loss_lambda=0.5, backbone=dict(zero_init_residual=True))


class LambdaProbe(Hook):
    """Records the weight each iteration trains with, and its dense loss."""

    priority = 'LOW'  # after DenseCLHook (NORMAL) in before_train_iter

    def __init__(self):
        self.lambdas, self.dense = {}, {}

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.lambdas[runner.iter] = runner.model.loss_lambda

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.dense[runner.iter] = outputs['loss_dense'].detach().item()


def _run(work_dir, max_iters, start_iters, resume=False):
    probe = LambdaProbe()
    runner = tiny_runner(
        work_dir, dict(TINY_DENSECL), dataset=RandomTwoViews(size=64),
        batch_size=2, max_iters=max_iters, checkpoint_interval=max_iters,
        custom_hooks=[dict(type='DenseCLHook', start_iters=start_iters),
                      probe],
        resume=resume, seed=None)
    runner.train()
    return probe


def test_warmup_then_configured_lambda_and_after_resume(tmp_path):
    work_dir = str(tmp_path)
    probe = _run(work_dir, max_iters=3, start_iters=2)
    assert probe.lambdas == {0: 0., 1: 0., 2: 0.5}
    assert probe.dense[0] == probe.dense[1] == 0. and probe.dense[2] > 0
    assert osp.exists(osp.join(work_dir, 'iter_3.pth'))
    # a fresh runner resumes at iter 3 >= start_iters: lambda must be the
    # configured one on the very first resumed iteration
    probe = _run(work_dir, max_iters=5, start_iters=2, resume=True)
    assert probe.lambdas == {3: 0.5, 4: 0.5}
    # resuming inside the warm-up keeps it off until start_iters
    probe = _run(work_dir, max_iters=7, start_iters=6, resume=True)
    assert probe.lambdas == {5: 0., 6: 0.5}


def test_configured_lambda_is_remembered_not_reread():
    from densecl_plugin.registry import MODELS
    model = MODELS.build(dict(TINY_DENSECL, loss_lambda=0.3))
    runner = SimpleNamespace(model=model, iter=0)
    hook = DenseCLHook(start_iters=2)
    hook.before_train(runner)
    hook.before_train_iter(runner, 0)
    assert model.loss_lambda == 0.
    hook.before_train(runner)  # e.g. train() called again: not re-read as 0
    runner.iter = 2
    hook.before_train_iter(runner, 0)
    assert model.loss_lambda == 0.3
    fixed = DenseCLHook(start_iters=0, loss_lambda=0.7)
    fixed.before_train(runner)
    fixed.before_train_iter(runner, 0)
    assert model.loss_lambda == 0.7


def test_ddp_wrapped_model():
    from mmengine.model import MMDistributedDataParallel

    from densecl_plugin.registry import MODELS
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    torch_dist.init_process_group('gloo', rank=0, world_size=1,
                                  init_method=f'tcp://127.0.0.1:{port}')
    try:
        model = MODELS.build(dict(TINY_DENSECL))
        runner = SimpleNamespace(model=MMDistributedDataParallel(model),
                                 iter=0)
        hook = DenseCLHook(start_iters=1)
        hook.before_train(runner)
        hook.before_train_iter(runner, 0)
        assert model.loss_lambda == 0.
        runner.iter = 1
        hook.before_train_iter(runner, 1)
        assert model.loss_lambda == 0.5
    finally:
        torch_dist.destroy_process_group()


def test_bad_arguments_and_model():
    with pytest.raises(ValueError, match='start_iters'):
        DenseCLHook(start_iters=-1)
    with pytest.raises(ValueError, match='loss_lambda'):
        DenseCLHook(loss_lambda=2.)
    with pytest.raises(TypeError, match='loss_lambda` attribute'):
        DenseCLHook().before_train(SimpleNamespace(model=torch.nn.Linear(1, 1)))
