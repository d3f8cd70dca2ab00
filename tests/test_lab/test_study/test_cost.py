# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The study's cost model: measured per-unit costs, steps, units, plans."""
import json

from densecl_lab.study.cost import (DEFAULT_COSTS, CostModel, fmt_duration,
                                    measured_costs)
from densecl_lab.study.shards import assign_shards
from densecl_lab.study.study import FULL, QUICK, Study


def test_durations():
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
    for kind, seconds in (('dense_probe', 7.0), ('retrieval', 3.0)):
        stage = tmp_path / 'seed0' / 'iters10' / 'eval' / 'densecl' / kind
        stage.mkdir(parents=True)
        (stage / 'result.json').write_text(json.dumps(dict(
            kind=kind, sets={}, n=128, stage_wall_time=seconds)))
    costs = measured_costs(str(tmp_path))
    assert costs['dense_probe_per_stage'] == 7.0
    assert costs['retrieval_per_stage'] == 3.0
    assert costs['pretrain_densecl_per_iter'] == (12.0 - 2.0) / 10
    assert costs['curve_per_pair'] == 2.0 / (2 * 2 * 5)
    assert costs['pretrain_overhead'] == 3.0
    assert costs['detection_per_iter'] == DEFAULT_COSTS['detection_per_iter']
    assert 'measured in 3 stages' in costs['source']

    study = Study(str(tmp_path), 'data', None, FULL)
    study.costs = dict(DEFAULT_COSTS, pretrain_mocov2_per_iter=1.0,
                       pretrain_densecl_per_iter=1.0, pretrain_overhead=0.0,
                       curve_per_pair=0.0)
    units = study.units()
    base = study.cost_model().plan(units)
    study.costs['pretrain_densecl_per_iter'] = 2.0
    model = study.cost_model()
    # every seed pre-trains DenseCL for 250 + 1000 + 2000 iterations
    assert model.plan(units) - base == 3 * 3250
    # the plan is the sum of its units; the random init rides with each
    # seed's smallest budget
    assert units == [(s, b) for b in (250, 1000, 2000) for s in (0, 1, 2)]
    costs = [model.unit(*u) for u in units]
    assert abs(sum(costs) - model.plan(units)) < 1e-6
    random = model.finetune() + model.evaluation()
    # 750 more iterations of MoCo v2 (1 s each) and DenseCL (2 s each)
    assert abs(costs[3] - costs[0] + random - 750 * (1.0 + 2.0)) < 1e-6
    # two jobs: the busier shard's share, at least half of the whole
    two = model.plan(units, jobs=2)
    assert model.plan(units) / 2 <= two < model.plan(units)
    owner = assign_shards(units, costs, 2)
    assert two == max(sum(c for u, c in zip(units, costs) if owner[u] == k)
                      for k in (0, 1))


def test_cost_model_steps_by_hand():
    model = CostModel(FULL, DEFAULT_COSTS, num_held_out=5)
    # 5 images x 4 seeds a curve point; 1000 // 250 + 2 = 6 points
    assert model.curve_pairs() == 20
    assert abs(model.pretrain('densecl', 1000)
               - (1.0 * 1000 + 10.0 + 0.1 * 20 * 6)) < 1e-9
    # the configs' 60 detection and 120 segmentation iterations
    assert model.finetune() == 1.5 * 60 + 30.0 + 1.0 * 120 + 15.0
    # correspondence, linear probe, dense probe, retrieval
    assert model.evaluation() == 20.0 + 10.0 + 15.0 + 10.0
    # QUICK: 1 curve image, 1 seed; 1 + 1 fine-tuning iterations
    quick = CostModel(QUICK, DEFAULT_COSTS, num_held_out=5)
    assert quick.curve_pairs() == 1
    assert quick.finetune() == 1.5 + 30.0 + 1.0 + 15.0
    # a study counts the data's held-out images once it read them
    study = Study('work', 'data', None, FULL)
    assert study.cost_model(DEFAULT_COSTS).curve_pairs() == 18 * 4
    study.manifest = dict(held_out=['a.png'] * 5)
    assert study.cost_model(DEFAULT_COSTS).curve_pairs() == 20
