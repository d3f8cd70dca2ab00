# Copyright (c) densecl_plugin contributors. All rights reserved.
"""`make demo QUICK=1` end to end: real data from the package wheels, real
MMEngine runs of every demo config (a few iterations each), the table, the
plots; then a re-run that reuses every stage."""
import json
import math
import os
import os.path as osp
import subprocess
import sys
import time

import pytest

from densecl_lab.data_prep import data_cache_dir

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


def _demo(work_dir, data_dir, *extra, timeout=900):
    cmd = [sys.executable, osp.join(REPO, 'tools', 'demo.py'), '--quick',
           '--work-dir', work_dir, '--data-dir', data_dir,
           '--cache-dir', data_cache_dir(), *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, time.perf_counter() - t0


def _assert_png(path):
    assert osp.isfile(path), path
    with open(path, 'rb') as f:
        assert f.read(8) == PNG_MAGIC, path
    assert osp.getsize(path) > 5000, path


@pytest.mark.slow
def test_quick_demo_end_to_end(tmp_path):
    work, data = str(tmp_path / 'work'), str(tmp_path / 'data')
    proc, first = _demo(work, data)
    out = proc.stdout

    # one table with finite metrics for every initialisation
    with open(osp.join(work, 'results.json')) as f:
        results = json.load(f)
    rows = {r['init']: r for r in results['rows']}
    assert list(rows) == ['random', 'mocov2', 'densecl']
    for init, row in rows.items():
        for key in ('det_AP50', 'det_mAP', 'seg_mIoU', 'corr_acc'):
            assert isinstance(row[key], float) and math.isfinite(row[key]), \
                (init, key, row[key])
            assert 0.0 <= row[key] <= 100.0, (init, key, row[key])
    assert rows['random']['pretrain_time_s'] is None
    for init in ('mocov2', 'densecl'):
        assert rows[init]['pretrain_time_s'] > 0
    assert results['settings']['name'] == 'quick'
    with open(osp.join(work, 'results.md')) as f:
        table = f.read()
    assert '| DenseCL |' in table and 'seeds:' in table
    assert 'One seed:' in table and 'small_scale_study.py' in table
    assert 'the 10 stages took' in table and '(0 of them reused)' in table
    assert '| backbone init |' in out  # printed too
    assert 'Outputs:' in out and osp.join(work, 'results.md') in out
    assert 'mmengine - INFO' not in out  # runner logs go to the log file
    assert 'mmengine - INFO' in open(osp.join(work, 'demo.log')).read()

    # the plots
    _assert_png(osp.join(work, 'loss_curves.png'))
    corr = results['correspondence']
    for init in ('densecl', 'random'):
        _assert_png(corr[init]['figure']['matches'])
        _assert_png(corr[init]['figure']['similarity'])
    assert corr['densecl']['grid'] == [6, 6]
    pca = results['dense_pca']
    _assert_png(pca['figure'])
    assert results['files']['dense_pca'] == pca['figure']
    assert list(pca['explained']) == ['random init', 'MoCo v2', 'DenseCL']
    assert len(pca['images']) == 4 and pca['grid'] == [12, 12]

    # every stage ran once, with the seeds and the schedule it states
    stages = {s['stage']: s for s in results['stages']}
    assert len(stages) == 2 + 6 + 1 + 1 and not any(
        s['skipped'] for s in stages.values())
    for algo in ('mocov2', 'densecl'):
        pre = results['pretrain'][algo]
        assert pre['iters'] == 3 and pre['seed'] == 0
        assert osp.isfile(pre['backbone'])
    for task in ('detection', 'segmentation'):
        for init, res in results['finetune'][task].items():
            assert res['iters'] == 2 and res['seed'] == 0
            assert res['backbone'] == (None if init == 'random' else
                                       results['pretrain'][init]['backbone'])

    # the data: real, split, and nothing held out leaks into the pool
    manifest = results['data']
    assert manifest['unlabeled']['images'] > 300
    assert manifest['detection']['classes'] == ['Tree']
    assert manifest['detection']['images']['VOC2007/test'] > 0
    assert manifest['segmentation']['images'] == dict(train=12, val=4)
    pool = set()
    for root, _, files in os.walk(manifest['unlabeled']['root']):
        pool |= {osp.splitext(f)[0] for f in files}
    with open(osp.join(data, 'manifest.json')) as f:
        held_out = json.load(f)['held_out']
    for path in held_out:
        stem = osp.splitext(osp.basename(path))[0]
        assert stem not in pool and f'nuclei_{stem}' not in pool, stem

    # a second run reuses every stage and reports the same table
    proc, again = _demo(work, data)
    with open(osp.join(work, 'results.json')) as f:
        second = json.load(f)
    assert all(s['skipped'] for s in second['stages'])
    assert second['rows'] == results['rows']
    assert proc.stdout.count('done before, reusing') == 10
    assert '(10 of them reused)' in proc.stdout
    assert again < first
