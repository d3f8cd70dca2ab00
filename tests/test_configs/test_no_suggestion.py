# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Every shipped pre-training config, on the data it is meant for, starts
without a suggestion from ``PretrainingSanityHook``.

* The CPU and demo configs on 50 and on 405 images (the demo pool's size):
  real runners on real folders, resolved as ``tools/train.py`` resolves
  them (``'auto'`` values, one process).
* The paper's configs (ImageNet 200 epochs, COCO 800 epochs) at their data
  set sizes and 8 processes: the hook's checks on the config's built model,
  with the data set size and the world size given (the images are not
  here).

The hook's earlier thresholds (4 total batches, a 5x5 grid, K <= n / 2 at
any size, a warm-up everywhere, 4x the linear lr rule) fired on these
configs; the last test keeps that on record.
"""
import glob
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

from densecl_plugin.engine.hooks import PretrainingSanityHook
from densecl_plugin.utils.auto_values import resolve_auto_values
from densecl_plugin.utils.config_search import crop_size

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: the configs that train on a folder of a few hundred images, one process
SMALL = sorted(osp.relpath(p, ROOT) for pattern in (
    'configs/densecl/*cpu.py', 'configs/mocov2/*cpu.py',
    'configs/demo/densecl_*.py', 'configs/demo/mocov2_*.py')
    for p in glob.glob(osp.join(ROOT, pattern)))
#: the paper's configs -> their data set's size
PAPER = {
    'configs/densecl/densecl_resnet50_8xb32-coslr-200e_in1k.py': 1281167,
    'configs/densecl/densecl_resnet50_amp-8xb32-coslr-200e_in1k.py': 1281167,
    'configs/densecl/densecl_resnet50_amp-bf16-8xb32-coslr-200e_in1k.py':
    1281167,
    'configs/densecl/densecl_resnet50_8xb32-coslr-800e_coco.py': 118287,
    'configs/mocov2/mocov2_resnet50_8xb32-coslr-200e_in1k.py': 1281167,
}
OLD_THRESHOLDS = dict(min_batches=4, min_grid=5, large_queue_ratio=0.5)


def test_every_pretraining_config_is_listed():
    shipped = {osp.relpath(p, ROOT) for p in glob.glob(
        osp.join(ROOT, 'configs', '*', '*.py'))
        if 'queue_len' in (Config.fromfile(p).get('model') or {})}
    assert shipped == set(SMALL) | set(PAPER)


@pytest.fixture(scope='module')
def folders(tmp_path_factory):
    import cv2
    out = {}
    rng = np.random.default_rng(0)
    for n in (50, 405):
        folder = tmp_path_factory.mktemp(f'img{n}')
        for i in range(n):
            cv2.imwrite(str(folder / f'{i}.png'),
                        rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))
        out[n] = str(folder)
    return out


def _runner_messages(path, folder, work_dir, **thresholds):
    from mmengine.runner import Runner
    cfg = Config.fromfile(osp.join(ROOT, path))
    cfg.train_dataloader.dataset.data_root = folder
    cfg.work_dir = work_dir
    resolve_auto_values(cfg)  # what tools/train.py does, one process
    runner = Runner.from_cfg(cfg)
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    hook = [h for h in runner.hooks
            if isinstance(h, PretrainingSanityHook)][0]  # on by default
    hook.__dict__.update(thresholds)
    hook.before_train(runner)
    return hook.messages


@pytest.mark.parametrize('n', [50, 405])
@pytest.mark.parametrize('path', SMALL)
def test_small_data_configs_start_without_a_suggestion(path, n, folders,
                                                       tmp_path):
    assert _runner_messages(path, folders[n], str(tmp_path)) == []


def _paper_messages(path, n, world=8, **thresholds):
    from densecl_plugin.registry import HOOKS, MODELS
    cfg = Config.fromfile(osp.join(ROOT, path))
    resolve_auto_values(cfg, world_size=world, dataset_size=n)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
        hook = HOOKS.build(dict(cfg.default_hooks.sanity, **thresholds))
    batch = cfg.train_dataloader.batch_size
    per_epoch = n // (batch * world)
    facts = PretrainingSanityHook.facts_for(
        model, n, batch, world, crop_size(cfg.train_dataloader),
        any('DenseCLHook' in h.type for h in cfg.get('custom_hooks', [])),
        cfg.train_cfg.max_epochs * per_epoch, cfg.optim_wrapper.optimizer.lr)
    return hook.check(facts)


@pytest.mark.parametrize('path', sorted(PAPER))
def test_paper_configs_at_their_size_start_without_a_suggestion(path):
    assert _paper_messages(path, PAPER[path]) == []


def test_the_paper_configs_on_small_data_do_draw_suggestions():
    """The same configs on 5,000 images: the queue and the warm-up are
    flagged (the checks are live, not switched off for R50)."""
    msgs = _paper_messages(
        'configs/densecl/densecl_resnet50_8xb32-coslr-800e_coco.py', 5000)
    assert len(msgs) == 2, msgs
    assert 'model.queue_len=65536) is large against the 5000 images' in \
        msgs[0] and 'model.queue_len=1024' in msgs[0]
    assert 'DenseCL without the lambda warm-up hook on 5000 images' in msgs[1]


def test_the_old_thresholds_fired_on_the_shipped_configs(folders, tmp_path):
    cpu = 'configs/densecl/densecl_resnet18_1xb16-coslr-640iters_folder-cpu.py'
    msgs = _runner_messages(cpu, folders[50], str(tmp_path), **OLD_THRESHOLDS)
    assert any('the data set has 50 images' in m for m in msgs)
    assert any('crop size of at least 130 px' in m for m in msgs)
    coco = 'configs/densecl/densecl_resnet50_8xb32-coslr-800e_coco.py'
    msgs = _paper_messages(coco, 118287, **OLD_THRESHOLDS)
    assert len(msgs) == 1 and 'model.queue_len=65536) is large' in msgs[0]
