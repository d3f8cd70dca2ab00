# Copyright (c) densecl_plugin contributors. All rights reserved.
"""PretrainingSanityHook: each start-of-run warning on a real Runner, and
none for a sane config; each threshold on both sides (``check`` on given
facts); own_key_share against a simulated InfiniteSampler. The shipped
configs on their data: ``tests/test_configs/test_no_suggestion.py``."""

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.dataset import InfiniteSampler
from mmengine.runner import Runner
from test_apis.test_train import DENSECL_CPU, MOCOV2_CPU, _tiny_config

from densecl_plugin.engine.hooks import PretrainingSanityHook
from densecl_plugin.engine.hooks.pretraining_sanity_hook import (RunFacts,
                                                                 own_key_share)
from densecl_plugin.utils.auto_values import resolve_auto_values


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
    resolve_auto_values(cfg)  # split BN: 'auto' in the CPU configs
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
    msgs = _messages(tmp_path, DENSECL_CPU, 6, 8, 16, 32, 1.0, split=1,
                     warmup=False)
    text = '\n'.join(msgs)
    assert len(msgs) == 6, text
    expect = [
        ('the data set has 6 images for a batch of 8 per process x 1',
         'train_dataloader.batch_size=3'),
        ('model.queue_len=16) is large against the 6 images', 'about 100%'),
        ('one process and no split BN', 'model.split_bn_groups=2'),
        ('the dense grid is 1x1 for 32 px', 'at least 96 px'),
        ('DenseCL without the lambda warm-up',
         "dict(type='DenseCLHook', start_iters="),
        ('optim_wrapper.optimizer.lr=1 is 189x the square-root',
         'optim_wrapper.optimizer.lr=0.0053'),
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


def _facts(**change):
    """The demo's DenseCL run on its pool: no warning."""
    base = dict(name='DenseCL', n=405, batch=16, world=1, K=64, groups=2,
                dense=True, loss_lambda=0.5, size=80, grid=3,
                has_warmup=True, max_iters=640, lr=0.0075)
    return RunFacts(**dict(base, **change))


@pytest.mark.parametrize('change,warns', [
    ({}, None),
    # one total batch of images is enough; one fewer is not
    (dict(n=16, K=8), None), (dict(n=15, K=4), 'the data set has 15 images'),
    # K <= n / 2 below 100,000 images, K <= n from there on
    (dict(K=202), None), (dict(K=203), 'model.queue_len=203) is large'),
    (dict(n=99_999, K=50_000), 'model.queue_len=50000) is large'),
    (dict(n=118_287, K=65_536, has_warmup=False), None),  # COCO, paper
    (dict(n=100_000, K=100_000, has_warmup=False), None),
    (dict(n=100_000, K=100_001, has_warmup=False),
     'model.queue_len=100001) is large'),
    # split BN in one process only
    (dict(groups=1), 'model.split_bn_groups=2'),
    (dict(groups=1, world=8, K=128, lr=0.0212), None),
    # a 3x3 grid is enough, 2x2 is not
    (dict(grid=2, size=64), 'a crop size of at least 96 px'),
    # the warm-up below 100,000 images only
    (dict(has_warmup=False), 'start_iters=64'),
    (dict(has_warmup=False, loss_lambda=0.), None),
    (dict(has_warmup=False, n=100_000, K=16384), None),
    # lr within 16x of the square-root rule (0.0075 at 16)
    (dict(lr=0.0075 * 16), None), (dict(lr=0.0075 / 16), None),
    (dict(lr=0.0075 * 16.1), '16.1x the square-root'),
    (dict(lr=0.0075 / 16.1), '0.0621x the square-root'),
    (dict(lr=None), None),  # not SGD
])
def test_each_threshold_on_both_sides(change, warns):
    msgs = PretrainingSanityHook().check(_facts(**change))
    if warns is None:
        assert msgs == []
    else:
        assert len(msgs) == 1 and warns in msgs[0], msgs


def test_the_suggestions_draw_no_warning():
    """Each suggestion, applied, silences its warning (they are 'auto''s
    values)."""
    hook = PretrainingSanityHook()
    assert hook.check(_facts(K=256)) != []
    assert hook.check(_facts(K=64)) == []  # suggested for 405 images
    msg = hook.check(_facts(K=256))[0]
    assert 'model.queue_len=64 (1%' in msg
