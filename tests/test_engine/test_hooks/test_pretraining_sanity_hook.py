# Copyright (c) densecl_plugin contributors. All rights reserved.
"""PretrainingSanityHook: each start-of-run warning on a real Runner, and
none for a sane config; own_key_share against a simulated InfiniteSampler."""

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.dataset import InfiniteSampler
from mmengine.runner import Runner
from test_apis.test_train import DENSECL_CPU, MOCOV2_CPU, _tiny_config

from densecl_plugin.engine.hooks import PretrainingSanityHook
from densecl_plugin.engine.hooks.pretraining_sanity_hook import own_key_share


def _images(folder, n):
    import cv2
    rng = np.random.default_rng(0)
    folder.mkdir(exist_ok=True)
    for i in range(n):
        cv2.imwrite(str(folder / f'{i}.png'),
                    rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))
    return str(folder)


def _messages(tmp_path, base, n, batch, K, crop, lr, split=1,
              warmup=True):
    path = _tiny_config(base, _images(tmp_path / f'img{n}', n),
                        str(tmp_path / 'c.py'), 2)
    cfg = Config.fromfile(path)
    cfg.work_dir = str(tmp_path / 'w')
    cfg.train_dataloader.batch_size = batch
    cfg.model.queue_len = K
    for t in cfg.train_dataloader.dataset.pipeline[1].transforms[0]:
        if t.type == 'RandomResizedCrop':
            t.size = crop
    cfg.optim_wrapper.optimizer.lr = lr
    if not warmup:
        cfg.custom_hooks = [h for h in cfg.custom_hooks
                            if h.type != 'DenseCLHook']
    runner = Runner.from_cfg(cfg)
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    runner.model.split_bn_groups = split  # the option of issue 19
    hook = [h for h in runner.hooks
            if isinstance(h, PretrainingSanityHook)][0]  # on by default
    hook.before_train(runner)
    return hook.messages


def test_a_sane_config_warns_nothing(tmp_path):
    # 64 images, batch 8, K=16 <= 64/2, 160 px -> 5x5 grid, split BN,
    # warm-up, lr = 0.03 * 8 / 256
    assert _messages(tmp_path, DENSECL_CPU, 64, 8, 16, 160, 0.03 * 8 / 256,
                     split=2) == []


def test_each_warning_names_its_key_and_a_value(tmp_path):
    msgs = _messages(tmp_path, DENSECL_CPU, 6, 8, 16, 32, 0.03, split=1,
                     warmup=False)
    text = '\n'.join(msgs)
    assert len(msgs) == 6, text
    expect = [
        ('the data set has 6 images for a batch of 8 per process x 1',
         'train_dataloader.batch_size='),
        ('model.queue_len=16) is large against the 6 images', 'about 100%'),
        ('one process and no split BN', 'model.split_bn_groups=4'),
        ('the dense grid is 1x1 for 32 px', 'at least 160 px'),
        ('DenseCL without the lambda warm-up',
         "dict(type='DenseCLHook', start_iters="),
        ('optim_wrapper.optimizer.lr=0.03 is 32x',
         'optim_wrapper.optimizer.lr=0.000937'),
    ]
    for (a, b), m in zip(expect, msgs):
        assert a in m and b in m, m


def test_mocov2_has_no_dense_warnings(tmp_path):
    msgs = _messages(tmp_path, MOCOV2_CPU, 64, 8, 16, 32, 0.03 * 8 / 256,
                     split=2)
    assert msgs == []


@pytest.mark.parametrize('n,K', [(100, 25), (100, 50), (80, 80), (60, 90),
                                 (40, 100)])
def test_own_key_share_matches_the_sampler(n, K):
    """Reference: MMEngine's InfiniteSampler order, a queue of the last K
    image ids, counted query by query (batch 4)."""
    sampler = iter(InfiniteSampler(list(range(n)), shuffle=True, seed=0))
    queue, hits, total, B = [], 0, 0, 4
    for it in range(30 * n // B):
        batch = [next(sampler) for _ in range(B)]
        if it * B > 5 * n:  # queue full, order stationary
            hits += sum(i in queue for i in batch)
            total += B
        queue = (queue + batch)[-K:]
    assert hits / total == pytest.approx(own_key_share(K, n), abs=0.03)
