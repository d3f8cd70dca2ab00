# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The data-pipeline benchmark (what ``tools/analysis/benchmark_pipeline.py``
runs): timing wrappers, side-by-side runs in separate processes, DataLoader
workers, the whole run."""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.config import Config

from densecl_lab.benchmarks import baseline_transforms as bt
from densecl_lab.benchmarks import pipeline as bench
from densecl_lab.benchmarks import pipeline_timing as timing


@pytest.fixture(scope='module')
def small_pipeline():
    """The MoCo v2 train pipeline with 32 px views."""
    cfg = Config.fromfile(bench.DEFAULT_CONFIG)
    pipeline = cfg.train_pipeline
    pipeline[1]['transforms'][0][0]['size'] = 32
    return pipeline


def test_defaults_and_bad_counts():
    import inspect
    defaults = {k: p.default for k, p in inspect.signature(
        bench.run_pipeline_benchmark).parameters.items()}
    assert defaults['rounds'] == 15 and defaults['max_side'] == 500
    assert tuple(defaults['workers']) == ()
    assert defaults['config'] == bench.DEFAULT_CONFIG
    assert defaults['baseline_rev'] is None and osp.isfile(bench.DEFAULT_CONFIG)
    bench.check_options()
    for bad in (dict(rounds=0), dict(workers=[0]), dict(max_side=8),
                dict(worker_rounds=0)):
        with pytest.raises(ValueError, match='must be >= 1'):
            bench.check_options(**bad)
        with pytest.raises(ValueError, match='must be >= 1'):
            bench.run_pipeline_benchmark(**bad)


def test_write_photos_limits_the_longest_side(tmp_path):
    paths = bench.write_photos(str(tmp_path), max_side=120)
    assert [osp.basename(p) for p in paths] == [
        f'{n}.jpg' for n in bench.PHOTOS]
    for p in paths:
        img = cv2.imread(p)
        assert img.ndim == 3 and max(img.shape[:2]) <= 120


def test_timed_pipeline_times_every_transform_and_changes_nothing(
        small_pipeline, real_image_paths):
    timed, totals = timing.timed_pipeline(small_pipeline)
    plain = bt.build_pipeline(small_pipeline)
    for i, path in enumerate(real_image_paths[:3]):
        outs = []
        for p in (timed, plain):
            np.random.seed(i)
            outs.append(p(dict(img_path=path)))
        for a, b in zip(outs[0]['inputs'], outs[1]['inputs']):
            assert bool((a == b).all())
    assert list(totals) == [
        'LoadImageFromFile', 'RandomResizedCrop', 'ColorJitter',
        'RandomGrayscale', 'GaussianBlur', 'RandomFlip',
        'MultiView (overhead)', 'PackSelfSupInputs']
    assert all(t > 0 for t in totals.values())
    own = timing._overhead_only(totals)['MultiView (overhead)']
    assert 0 < own < totals['MultiView (overhead)']


def test_side_by_side_variants_in_their_own_processes(small_pipeline,
                                                      real_image_paths):
    variants = [bt.Variant('a'), bt.Variant('b')]
    res = timing.measure_single(variants, small_pipeline, real_image_paths[:3],
                              rounds=2)
    assert set(res['images_per_s']) == {'a', 'b'}
    assert all(len(r) == 2 for r in res['images_per_s_rounds'].values())
    assert res['ratio']['a'] == 1.
    # the same code with the same seeds: the same views and records
    assert res['max_abs_diff'] == {'b': 0}
    assert res['differing_pixels'] == {'b': 0.}
    assert res['records_equal'] == {'b': True}
    assert res['ms_per_image']['a']['LoadImageFromFile'] > 0
    table = bench.format_table(res)
    assert '| **images/s (1 core)** |' in table and 'b vs a' in table
    with pytest.raises(ValueError, match='unique'):
        timing.measure_single([bt.Variant('a')] * 2, small_pipeline,
                            real_image_paths[:1], rounds=1)


def test_baseline_is_built_in_its_own_scope_under_any_default_scope(
        small_pipeline):
    """A default scope left by a runner must not resolve the baseline's
    transforms to the current ones (or the comparison compares nothing)."""
    from mmengine.registry import DefaultScope
    try:
        baseline = bt.load_baseline_transforms('HEAD')
    except RuntimeError as e:
        pytest.skip(f'no git history here: {e}')
    with DefaultScope.overwrite_default_scope('densecl_plugin'):
        pipe = bt.build_pipeline(small_pipeline, baseline)
    view = pipe.transforms[1].pipelines[0].transforms[0]
    assert type(view).__module__.startswith('densecl_baseline_')
    with DefaultScope.overwrite_default_scope(baseline.__name__.split('.')[0]):
        pipe = bt.build_pipeline(small_pipeline)
    view = pipe.transforms[1].pipelines[0].transforms[0]
    assert type(view).__module__.startswith('densecl_plugin.')


def test_a_failing_variant_is_named(small_pipeline, real_image_paths):
    with pytest.raises(RuntimeError, match='broken'):
        timing.measure_single([bt.Variant('broken', rev='no-such-rev')],
                            small_pipeline, real_image_paths[:1], rounds=1)


def test_measure_workers(small_pipeline, real_image_paths):
    rate = bench.measure_workers(bt.Variant('current'), small_pipeline,
                                real_image_paths, num_workers=1,
                                num_images=8, batch_size=4)
    assert rate > 0
    with pytest.raises(ValueError, match='num_workers'):
        bench.measure_workers(bt.Variant('current'), small_pipeline,
                             real_image_paths, num_workers=0)


def test_run_writes_json(real_image_dir, tmp_path, capsys):
    out = str(tmp_path / 'res.json')
    res = bench.run_pipeline_benchmark(images=real_image_dir, rounds=1,
                                      out=out, command='python x.py')
    assert osp.isfile(out)
    with open(out) as f:
        saved = json.load(f)
    assert saved['images'] == len(os.listdir(real_image_dir)) == 7
    assert saved['images_per_s']['current'] == res['images_per_s']['current']
    assert saved['command'] == 'python x.py'
    assert saved['paths'] == sorted(os.listdir(real_image_dir))
    assert 'images/s (1 core)' in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match='no .jpg'):
        bench.run_pipeline_benchmark(images=str(tmp_path / 'empty'), rounds=1)
