# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Pieces of the small-scale study that need no training run."""
import json

import numpy as np
import pytest
import torch

from densecl_plugin.study.probe import (linear_probe, probe_data,
                                        stratified_folds)
from densecl_plugin.study.study import (DEFAULT_COSTS, FULL, Study,
                                        assign_shards, densecl_start_iters,
                                        fmt_duration, measured_costs)


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


def test_densecl_start_iters_and_durations():
    assert densecl_start_iters(160, 0.1) == 16
    assert densecl_start_iters(4000, 0.1) == 400
    assert densecl_start_iters(2, 0.1) == 1
    assert densecl_start_iters(1, 0.1) == 0
    assert fmt_duration(42) == '42 s'
    assert fmt_duration(185) == '3 min 05 s'
    assert fmt_duration(3720) == '1 h 02 min'


def test_measured_costs_and_plan(tmp_path):
    assert measured_costs(str(tmp_path)) is None
    pre = tmp_path / 'seed0' / 'iters10' / 'pretrain' / 'densecl'
    pre.mkdir(parents=True)
    (pre / 'result.json').write_text(json.dumps(dict(
        algo='densecl', losses=[], iters=10, train_time=12.0,
        stage_wall_time=15.0)))
    (pre / 'curve.json').write_text(json.dumps(dict(
        eval_time=2.0, held_out=[{}, {}], seeds=[1000, 1001],
        num_images=5)))
    costs = measured_costs(str(tmp_path))
    assert costs['pretrain_densecl_per_iter'] == (12.0 - 2.0) / 10
    assert costs['curve_per_pair'] == 2.0 / (2 * 2 * 5)
    assert costs['pretrain_overhead'] == 3.0
    assert costs['detection_per_iter'] == DEFAULT_COSTS['detection_per_iter']
    assert 'measured in 1 stages' in costs['source']

    study = Study(str(tmp_path), 'data', None, FULL)
    study.costs = dict(DEFAULT_COSTS, pretrain_mocov2_per_iter=1.0,
                       pretrain_densecl_per_iter=1.0, pretrain_overhead=0.0,
                       curve_per_pair=0.0)
    base = study.planned_cost()
    study.costs['pretrain_densecl_per_iter'] = 2.0
    # every seed pre-trains DenseCL for 250 + 1000 + 2000 iterations
    assert study.planned_cost() - base == 3 * 3250
    # the plan is the sum of its units; the random init rides with each
    # seed's smallest budget
    units = study.units()
    assert units == [(s, b) for b in (250, 1000, 2000) for s in (0, 1, 2)]
    costs = [study.unit_cost(*u) for u in units]
    assert abs(sum(costs) - study.planned_cost()) < 1e-6
    random = study._cost_finetune() + study._cost_eval()
    # 750 more iterations of MoCo v2 (1 s each) and DenseCL (2 s each)
    assert abs(costs[3] - costs[0] + random - 750 * (1.0 + 2.0)) < 1e-6
    # two jobs: the busier shard's share, at least half of the whole
    two = study.planned_cost(jobs=2)
    assert study.planned_cost() / 2 <= two < study.planned_cost()
    owner = assign_shards(units, costs, 2)
    assert two == max(sum(c for u, c in zip(units, costs) if owner[u] == k)
                      for k in (0, 1))


def test_assign_shards_covers_every_unit_once_and_balances():
    units = [(s, b) for b in (1, 2, 3) for s in (0, 1)]
    costs = [1.0, 1.0, 2.0, 2.0, 4.0, 4.0]
    owner = assign_shards(units, costs, 2)
    assert set(owner) == set(units) and set(owner.values()) == {0, 1}
    loads = [sum(c for u, c in zip(units, costs) if owner[u] == k)
             for k in (0, 1)]
    assert loads == [7.0, 7.0]
    # longest first, ties to the lower shard: the same split every call
    assert owner == assign_shards(units, costs, 2)
    assert owner[(0, 3)] == 0 and owner[(1, 3)] == 1
    # one shard takes all; more shards than units leaves some empty
    assert set(assign_shards(units, costs, 1).values()) == {0}
    many = assign_shards(units, costs, 8)
    assert sorted(many.values()) == list(range(6))
    with pytest.raises(ValueError, match='shards must be >= 1'):
        assign_shards(units, costs, 0)
    with pytest.raises(ValueError, match='6 units but 5 costs'):
        assign_shards(units, costs[:5], 2)
