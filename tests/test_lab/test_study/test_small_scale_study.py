# Copyright (c) densecl_plugin contributors. All rights reserved.
"""`small_scale_study.py --quick` end to end: real data, real MMEngine runs
(2 budgets x 2 seeds x 2 arms, plus the random init), the report's
structure, intervals recomputed from the per-seed numbers, and a resume
that redoes only what is missing."""
import json
import math
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest

from densecl_lab.data_prep import data_cache_dir
from densecl_lab.study import QUICK, estimate, measured_costs

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
PNG_MAGIC = b'\x89PNG\r\n\x1a\n'
DENSE = [f'dense_{name}_{lv}_{what}' for name in ('nuclei', 'trees') for lv in ('C4', 'C5')
         for what in ('mIoU', 'acc')]
RETRIEVAL = ['feat_top1', 'view_top1', 'emb_std']
METRICS = ['corr_acc', 'det_AP50', 'det_mAP', 'seg_mIoU', 'probe_acc'] + DENSE + RETRIEVAL
#: the evaluation stages of every checkpoint (and of each random init)
EVAL_STAGES = ('correspondence', 'probe', 'dense probe', 'retrieval')
#: t_{0.975, df}, an independent table for when scipy is missing
T_TABLE = {1: 12.7062047, 2: 4.3026527, 3: 3.1824463, 4: 2.7764451}


def _t975(df):
    try:
        from scipy.stats import t
    except ImportError:
        return T_TABLE[df]
    return float(t.ppf(0.975, df))


def _study(work, data, *extra):
    cmd = [sys.executable,
           osp.join(REPO, 'tools', 'benchmarks', 'small_scale_study.py'),
           '--quick', '--no-progress', '--work-dir', work, '--data-dir', data,
           '--cache-dir', data_cache_dir(), *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, time.perf_counter() - t0


@pytest.mark.slow  # 2.5-5 min on one core, depending on the load
def test_quick_study_report_intervals_and_resume(tmp_path):
    work, data = str(tmp_path / 'work'), str(tmp_path / 'data')
    # two parallel shards, then the report in the parent (stages reused)
    proc, first = _study(work, data, '--jobs', '2')
    assert '2 shards in parallel' in proc.stdout
    assert 'estimated wall time of the whole plan' in proc.stdout
    assert 'ETA' in proc.stdout
    for i in (1, 2):
        with open(osp.join(work, f'shard{i}of2.log')) as f:
            log = f.read()
        assert f'shard {i}/2: units [' in log and f'Shard {i}/2 done' in log
    with open(osp.join(work, 'results.json')) as f:
        res = json.load(f)
    budgets, seeds = res['budgets'], res['seeds']
    assert budgets == [2, 4] and seeds == [0, 1]
    assert res['metrics'] == METRICS
    assert all(st['skipped'] for st in res['stages'])  # the shards ran them
    for st in res['stages']:  # a reused stage keeps the time it took
        with open(st['result']) as f:
            assert st['wall_time'] == json.load(f)['stage_wall_time'] > 0
    assert 'with 2 parallel jobs' in ' '.join(res['notes'])

    # every arm x budget x seed, once, with finite metrics in [0, 100]
    runs = res['runs']
    keys = sorted((r['arm'], r['budget'], r['seed']) for r in runs)
    assert keys == sorted([('random', 0, s) for s in seeds] + [
        (a, b, s) for a in ('mocov2', 'densecl') for b in budgets
        for s in seeds])
    for r in runs:
        for m in METRICS + ['same_cell_acc', 'chance_acc']:
            v = r['metrics'][m]
            top = 10.0 if m == 'emb_std' else 100.0  # emb. std x sqrt(D): about 1 when spread
            assert isinstance(v, float) and 0.0 <= v <= top, (r, m)
        # 16 quick retrieval images: top-1 in steps of 1/16, chance 1/16
        assert r['metrics']['retrieval_chance'] == 100 / 16
        for m in ('feat_top1', 'view_top1'):
            assert (r['metrics'][m] * 16 / 100) % 1 == 0, (r, m)
    names = [st['stage'] for st in res['stages']]
    for arm in ('random', 'mocov2', 'densecl'):
        for stage in EVAL_STAGES:  # every seed (and budget) of every arm
            n = len(seeds) * (1 if arm == 'random' else len(budgets))
            assert names.count(f'{stage} {arm}') == n, (stage, arm)
    with open(osp.join(work, 'seed0', 'iters2', 'eval', 'densecl', 'dense_probe',
                       'result.json')) as f:
        dense = json.load(f)
    assert dense['size'] == QUICK.dense_probe_size and dense['max_iter'] == QUICK.dense_probe_iters
    for name in ('nuclei', 'trees'):
        one = dense['sets'][name]
        assert one['num_train'] == one['num_val'] == QUICK.dense_probe_max_images
        assert one['C4']['grid'] == [10, 10] and one['C5']['grid'] == [5, 5]  # 160 px
    # the random init is the exact init of that seed's DenseCL run, so its
    # view pairs and hence the same-cell baseline are shared by all arms
    assert len({r['metrics']['same_cell_acc'] for r in runs}) == 1
    # separate runs per budget: each has its own checkpoint
    ckpts = [r['checkpoint'] for r in runs if r['arm'] != 'random']
    assert len(set(ckpts)) == len(ckpts) and all(map(osp.isfile, ckpts))
    assert not any(f.startswith('iter_') for r in runs if r['arm'] != 'random'
                   for f in os.listdir(osp.dirname(r['checkpoint'])))

    # mean ± std per arm and budget, from the per-seed values
    summary = {(s['arm'], s['budget']): s['metrics'] for s in res['summary']}
    assert set(summary) == {('random', 0)} | {
        (a, b) for a in ('mocov2', 'densecl') for b in budgets}
    for (arm, bud), stats in summary.items():
        for m in METRICS:
            vals = [r['metrics'][m] for r in runs
                    if r['arm'] == arm and r['budget'] == bud]
            mean = sum(vals) / len(vals)
            sd = math.sqrt(sum((v - mean) ** 2 for v in vals) /
                           (len(vals) - 1))
            assert stats[m]['n'] == len(seeds)
            assert math.isclose(stats[m]['mean'], mean, abs_tol=1e-9)
            assert math.isclose(stats[m]['std'], sd, abs_tol=1e-9)

    # the paired DenseCL - MoCo v2 intervals, recomputed independently
    assert [p['budget'] for p in res['paired']] == budgets
    for p in res['paired']:
        for m in METRICS:
            by_seed = {(r['arm'], r['seed']): r['metrics'][m] for r in runs
                       if r['budget'] == p['budget']}
            diffs = [by_seed[('densecl', s)] - by_seed[('mocov2', s)]
                     for s in seeds]
            n = len(diffs)
            mean = sum(diffs) / n
            sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
            half = _t975(n - 1) * sd / math.sqrt(n)
            got = p['metrics'][m]
            assert got['diffs'] == diffs and got['n'] == n
            assert math.isclose(got['mean'], mean, abs_tol=1e-9)
            assert math.isclose(got['lo'], mean - half, abs_tol=1e-6)
            assert math.isclose(got['hi'], mean + half, abs_tol=1e-6)

    # the correspondence curve over pre-training iterations (both arms,
    # held-out; DenseCL also from CorrespondenceHook)
    curves = res['curves']
    assert curves['budget'] == max(budgets)
    for algo in ('mocov2', 'densecl'):
        assert curves[algo]['iters'] == [0, 2, 4]
        assert all(s['n'] == len(seeds) for s in curves[algo]['held_out'])
    assert curves['densecl']['train_iters'] == [1, 2, 3, 4]
    assert curves['mocov2']['train_iters'] == []

    # the markdown and the plots
    with open(osp.join(work, 'results.md')) as f:
        md = f.read()
    assert '## Mean ± std over seeds' in md and '| DenseCL | 4 | 2 |' in md
    assert 'DenseCL − MoCo v2, paired by seed' in md
    assert 'lfw_subset' in md and 'separate run' in md
    assert '### Frozen-feature dense probe (val)' in md and 'Dense probe: a 1x1 conv' in md
    assert '### View retrieval on fresh views of the pool' in md and 'seeds 10000 + i' in md
    # the recipe the report gives is the configs' (not a copy in the code)
    from mmengine.config import Config

    from densecl_lab.demo.data import load_manifest
    from densecl_lab.demo.stages import CONFIGS
    from densecl_plugin.utils.auto_values import resolve_auto_values
    cfg = Config.fromfile(osp.join(REPO, 'configs', CONFIGS['densecl']))
    # its 'auto' values as one process on the study's pool resolves them
    cfg.train_dataloader.batch_size = QUICK.pretrain_batch_size
    resolve_auto_values(cfg, world_size=1,
                        dataset_size=load_manifest(data)['unlabeled']['images'])
    assert f'queue {cfg.model.queue_len}' in md and f'lr {cfg.optim_wrapper.optimizer.lr}' in md
    for name in ('metrics_vs_budget.png', 'correspondence_curve.png'):
        path = osp.join(work, name)
        with open(path, 'rb') as f:
            assert f.read(8) == PNG_MAGIC
        assert osp.getsize(path) > 10000

    # a stop after one stage: only the missing stages run again, and the
    # report is the same; a work dir without the dense probe and retrieval
    # of a unit (as one written before they existed) reuses its
    # pre-trainings, fine-tunings and other evaluations, and runs only those
    unit = osp.join(work, 'seed1', 'iters4', 'eval')
    os.remove(osp.join(unit, 'densecl', 'probe', 'result.json'))
    for algo in ('mocov2', 'densecl'):
        for stage in ('dense_probe', 'retrieval'):
            os.remove(osp.join(unit, algo, stage, 'result.json'))
    proc, again = _study(work, data)
    with open(osp.join(work, 'results.json')) as f:
        second = json.load(f)
    ran = [s for s in second['stages'] if not s['skipped']]
    assert [s['stage'] for s in ran] == [
        'dense probe mocov2', 'retrieval mocov2', 'probe densecl',
        'dense probe densecl', 'retrieval densecl']
    assert len(second['stages']) == len(res['stages'])
    assert second['paired'] == res['paired'] or all(  # the rerun went on 2 threads, not 1
        math.isclose(a['metrics'][m]['mean'] or 0, b['metrics'][m]['mean'] or 0, abs_tol=0.05)
        for a, b in zip(second['paired'], res['paired']) for m in METRICS)
    for r2, r1 in zip(second['runs'], res['runs']):
        assert r2.keys() == r1.keys()
        rerun = (r1['arm'], r1['budget'], r1['seed']) in (('mocov2', 4, 1), ('densecl', 4, 1))
        for m, v in r1['metrics'].items():  # reused stages: the same numbers exactly
            tol = (1e-4 if m == 'emb_std' else 0.05) if rerun and (
                m in DENSE + RETRIEVAL) else 0.0
            assert math.isclose(r2['metrics'][m], v, abs_tol=tol), (r1, m)
    assert again < first

    # the costs for the estimate, measured in this work dir's stages
    costs = measured_costs(work)
    assert 'measured in' in costs['source']
    for key in ('pretrain_mocov2_per_iter', 'pretrain_densecl_per_iter',
                'detection_per_iter', 'segmentation_per_iter'):
        assert 0 < costs[key] < 60, (key, costs[key])
    assert 'Estimated wall time of the quick study' in estimate(
        QUICK, work, data, data_cache_dir(), calibrate=False)['text']


def _shard_pids(work, jobs, timeout=120.0):
    """The shard processes' pids, from their logs' first lines."""
    deadline = time.monotonic() + timeout
    pids = {}
    while len(pids) < jobs and time.monotonic() < deadline:
        for i in range(1, jobs + 1):
            path = osp.join(work, f'shard{i}of{jobs}.log')
            if i not in pids and osp.exists(path):
                with open(path) as f:
                    first = f.readline()
                if ' pid ' in first:
                    pids[i] = int(first.split(' pid ')[1])
        time.sleep(0.5)
    assert len(pids) == jobs, f'no shard pids in {work} after {timeout} s'
    return list(pids.values())


def _gone(pid, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # a zombie of an already-dead parent is reaped by init
        try:
            with open(f'/proc/{pid}/stat') as f:
                if f.read().split(') ')[1].startswith('Z'):
                    return True
        except OSError:
            return True
        time.sleep(0.5)
    return False


@pytest.mark.slow  # ~1 min: two quick studies started and stopped
@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGKILL])
def test_parallel_study_leaves_no_shard_behind(tmp_path, signum):
    """A stopped parent (SIGTERM: it terminates its shards; SIGKILL: each
    shard notices it is orphaned) leaves no process burning the cores."""
    work, data = str(tmp_path / 'work'), str(tmp_path / 'data')
    cmd = [sys.executable,
           osp.join(REPO, 'tools', 'benchmarks', 'small_scale_study.py'),
           '--quick', '--no-progress', '--jobs', '2', '--work-dir', work,
           '--data-dir', data, '--cache-dir', data_cache_dir()]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        pids = _shard_pids(work, 2, timeout=300)
        proc.send_signal(signum)
        proc.wait(timeout=60)
        for pid in pids:
            assert _gone(pid), f'shard pid {pid} still runs after {signum}'
    finally:
        if proc.poll() is None:
            proc.kill()
