# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Pieces of the small-scale study that need no training run."""
import numpy as np
import torch

from densecl_lab.study.probe import linear_probe, probe_data, stratified_folds
from densecl_lab.study.study import densecl_start_iters


def test_stratified_folds_balance_classes():
    labels = np.array([0] * 10 + [1] * 6)
    fold = stratified_folds(labels, 2, seed=3)
    for k in (0, 1):
        assert (labels[fold == k] == 0).sum() == 5
        assert (labels[fold == k] == 1).sum() == 3


def test_linear_probe_separable_and_random_labels():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(80, 16, generator=gen)
    y = (x[:, 0] > 0).long().numpy()
    assert linear_probe(x, y, folds=4)['accuracy'] >= 0.9
    noise = np.random.RandomState(0).randint(0, 2, 80)
    assert linear_probe(x, noise, folds=4)['accuracy'] < 0.8


def test_probe_data_is_real_and_balanced():
    images, labels = probe_data()
    assert images.shape == (200, 25, 25) and labels.sum() == 100
    small, small_labels = probe_data(40)
    assert small.shape[0] == 40 and small_labels.sum() == 20


def test_densecl_start_iters():
    assert densecl_start_iters(160, 0.1) == 16
    assert densecl_start_iters(4000, 0.1) == 400
    assert densecl_start_iters(2, 0.1) == 1
    assert densecl_start_iters(1, 0.1) == 0


def test_cost_and_shard_names_still_import_from_the_study_module():
    from densecl_lab.study import cost, shards, study
    for name in ('DEFAULT_COSTS', 'fmt_duration', 'measured_costs'):
        assert getattr(study, name) is getattr(cost, name)
    for name in ('assign_shards', 'run_parallel'):
        assert getattr(study, name) is getattr(shards, name)


def test_report_recipe_is_read_from_the_pretraining_configs():
    import os.path as osp

    from mmengine.config import Config

    from densecl_lab.demo.stages import CONFIGS
    from densecl_lab.study.report import pretrain_recipe_text
    from densecl_plugin.utils.auto_values import resolve_auto_values
    configs = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.dirname(
        osp.abspath(__file__))))), 'configs')
    cfgs = {a: Config.fromfile(osp.join(configs, CONFIGS[a])) for a in ('mocov2', 'densecl')}
    for cfg in cfgs.values():  # as the study runs them: 'auto' resolved on the pool
        resolve_auto_values(cfg, world_size=1, dataset_size=405)
    c = cfgs['densecl']
    text = pretrain_recipe_text(cfgs)
    for part in (f'ResNet-{c.model.backbone.depth}', f'queue {c.model.queue_len}',
                 f'm = {c.model.momentum}', f'batch {c.train_dataloader.batch_size}',
                 f'lr {c.optim_wrapper.optimizer.lr}'):
        assert part in text, (part, text)
    groups = c.model.get('split_bn_groups', 1) or 1
    assert ('split BN' in text) == (groups > 1)
    # what the two configs do not share is given per algorithm
    cfgs['densecl'].model.queue_len = 7
    other = (cfgs['mocov2'].model.get('split_bn_groups', 1) or 1) + 2
    cfgs['densecl'].model.split_bn_groups = other
    text = pretrain_recipe_text(cfgs)
    assert f"queue {cfgs['mocov2'].model.queue_len} (MoCo v2) / queue 7 (DenseCL)" in text
    assert f'split BN in {other} groups (DenseCL)' in text
