# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The end-to-end benchmark (``benchmark_step.py --end-to-end --peer``) on
the demo's setting and a few real JPEGs, the mmcv hue fix it needs for
mmpretrain's pipeline under numpy 2, and the load record of every timing
tool: structure and arithmetic, no timings."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

from densecl_plugin.benchmarks import measure
from densecl_plugin.benchmarks.end_to_end import (OURS_BEST, OURS_FP32, PEER,
                                                  adjust_hue_numpy2,
                                                  benchmark_end_to_end,
                                                  build_variants, crop_size_of,
                                                  format_end_to_end,
                                                  numpy2_safe_mmcv_hue,
                                                  scenario_config,
                                                  set_crop_size)

STANDIN = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'peers',
                   'standin')


@pytest.fixture(scope='module')
def jpegs(tmp_path_factory):
    from skimage import data
    folder = tmp_path_factory.mktemp('jpegs')
    for name in ('astronaut', 'chelsea', 'coffee', 'rocket'):
        img = getattr(data, name)()[..., :3]
        img = cv2.resize(img, (160, 120), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(folder / f'{name}.jpg'), img[..., ::-1])
    return str(folder)


def _hue_loop(img_bgr, shift):
    """Reference: HSV_FULL, every hue value + shift modulo 256 in a loop."""
    hsv = cv2.cvtColor(img_bgr, cv2.COLOR_BGR2HSV_FULL)
    for i in range(hsv.shape[0]):
        for j in range(hsv.shape[1]):
            hsv[i, j, 0] = (int(hsv[i, j, 0]) + shift) % 256
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR_FULL)


@pytest.mark.parametrize('factor,shift', [(-0.1, 231), (-0.5, 129),
                                          (-0.003, 0), (0.1, 25), (0.5, 127)])
def test_hue_fix_wraps_negative_shifts(factor, shift):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(adjust_hue_numpy2(img, factor, 'cv2'),
                                  _hue_loop(img, shift))


@pytest.mark.parametrize('backend', ['cv2', 'pillow'])
@pytest.mark.parametrize('factor', [0.0, 0.07, 0.5])
def test_hue_fix_equals_mmcv_where_mmcv_runs(backend, factor):
    import mmcv
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    np.testing.assert_array_equal(
        adjust_hue_numpy2(img, factor, backend),
        mmcv.adjust_hue(img, factor, backend=backend))


def test_hue_fix_is_needed_and_scoped():
    import mmcv
    img = np.zeros((4, 4, 3), np.uint8)
    if np.__version__.startswith('1.'):
        pytest.skip('numpy 1 wraps the shift itself')
    with pytest.raises(OverflowError):
        mmcv.adjust_hue(img, -0.1)
    original = mmcv.adjust_hue
    with numpy2_safe_mmcv_hue():
        assert mmcv.adjust_hue is adjust_hue_numpy2
        mmcv.adjust_hue(img, -0.1)
    assert mmcv.adjust_hue is original
    with pytest.raises(ValueError, match='hue_factor'):
        adjust_hue_numpy2(img, 0.6)


def test_scenario_overrides(jpegs):
    cfg = scenario_config('r18-224px', jpegs)
    assert crop_size_of(cfg.train_dataloader.dataset.pipeline) == 224
    assert cfg.model.queue_len == 65536
    assert cfg.train_dataloader.dataset.data_root == jpegs
    demo = scenario_config('demo', jpegs)
    assert crop_size_of(demo.train_dataloader.dataset.pipeline) == 80
    pipe = set_crop_size(demo.train_dataloader.dataset.pipeline, 48)
    assert crop_size_of(pipe) == 48
    assert crop_size_of(demo.train_dataloader.dataset.pipeline) == 80
    with pytest.raises(ValueError, match="unknown end-to-end scenario 'x'"):
        scenario_config('x', jpegs)
    with pytest.raises(ValueError, match='RandomResizedCrop'):
        crop_size_of([dict(type='LoadImageFromFile')])


def test_variants_start_equal_and_differ_only_in_their_setting(jpegs):
    from mmengine.optim import OptimWrapper

    from densecl_plugin.engine.optim_wrappers import CPUAmpOptimWrapper
    cfg = scenario_config('demo', jpegs)
    variants = build_variants(cfg, 0, peer=True, standin=STANDIN)
    by = {v.name: v for v in variants}
    assert list(by) == [OURS_FP32, OURS_BEST, PEER]
    ref = by[OURS_FP32].model.state_dict()
    for name in (OURS_BEST, PEER):
        state = by[name].model.state_dict()
        assert state.keys() == ref.keys()
        for k, v in ref.items():
            assert torch.equal(state[k], v), (name, k)
    assert not by[OURS_FP32].model.channels_last
    assert by[OURS_BEST].model.channels_last
    assert type(by[OURS_FP32].optim_wrapper) is OptimWrapper
    assert isinstance(by[OURS_BEST].optim_wrapper, CPUAmpOptimWrapper)
    assert type(by[PEER].optim_wrapper) is OptimWrapper
    assert type(by[PEER].model).__module__.startswith('mmpretrain.')
    # the peer reads the same images through its own pipeline and dataset
    ds = by[PEER].loader.dataset
    assert type(ds).__module__.startswith('mmpretrain.')
    assert sorted(osp.basename(ds.get_data_info(i)['img_path'])
                  for i in range(len(ds))) == sorted(os.listdir(jpegs))
    pre = by[PEER].model.data_preprocessor
    assert torch.allclose(pre.mean.flatten(),
                          torch.tensor([123.675, 116.28, 103.53]))


def test_end_to_end_structure(jpegs):
    res = benchmark_end_to_end(['demo'], jpegs, workers=(1, ), rounds=2,
                               block=1, peer=True, standin=STANDIN,
                               log=lambda *a: None, warmup=0)
    s = res['scenarios']['demo']
    assert (s['batch'], s['crop_size'], s['queue_len'], s['depth']) == \
        (16, 80, 256, 18)
    per = s['workers'][1]
    assert list(per) == [OURS_FP32, OURS_BEST, PEER]
    for r in per.values():
        assert len(r['blocks']) == 2 and all(b > 0 for b in r['blocks'])
        assert r['median'] == pytest.approx(sum(r['blocks']) / 2)
    ratios = res['ratios']['demo']
    assert ratios['same'][1] == pytest.approx(
        per[OURS_FP32]['median'] / per[PEER]['median'])
    assert ratios['best'] == pytest.approx(
        max(per[OURS_FP32]['median'], per[OURS_BEST]['median'])
        / per[PEER]['median'])
    text = format_end_to_end(res)
    assert '| ours best |' in text and 'ours best / mmpretrain best' in text


def test_end_to_end_names_a_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match='no image folder'):
        benchmark_end_to_end(['demo'], str(tmp_path / 'none'))


@pytest.mark.parametrize('load,busy', [(0.4, False), (0.9, False),
                                       (1.2, True), (3.0, True)])
def test_load_record_warns_above_half_a_core_before(monkeypatch, load, busy):
    monkeypatch.setattr(measure.os, 'getloadavg', lambda: (load, 0.2, 0.1))
    monkeypatch.setattr(measure.os, 'cpu_count', lambda: 2)
    monkeypatch.setattr(measure, 'machine_busy_seconds', lambda: None)
    lines = []
    with measure.LoadRecord(lines.append) as rec:
        pass
    out = rec.as_dict()
    assert out['before']['load'] == [load, 0.2, 0.1]
    assert out['before']['cores'] == 2
    assert out['others_cores'] is None
    assert out['quiet'] is (not busy)
    assert len(lines) == (1 if busy else 0)  # on entry
    if busy:
        assert 'not be quiet-machine figures' in lines[0]
        assert 'BUSY' in measure.format_load(out)
    else:
        assert measure.format_load(out).endswith('quiet')


@pytest.mark.parametrize('machine,own,others,shared', [
    (3.0, 3.0, 0.0, False),   # all the busy time was ours
    (3.6, 3.0, 0.6, True),    # another job: 0.6 s of 2 s = 0.3 cores
    (3.3, 3.0, 0.3, False),   # 0.15 cores: below 0.1 per core (0.2)
    (2.9, 3.0, 0.0, False),   # clock granularity: never negative
])
def test_load_record_counts_other_processes_cpu(monkeypatch, machine, own,
                                                others, shared):
    """Busy seconds 100 -> 100 + machine, ours 10 -> 10 + own, over 2 s of
    wall time on 2 cores: others = (machine - own) / 2 cores' worth."""
    monkeypatch.setattr(measure.os, 'getloadavg', lambda: (0.1, 0.1, 0.1))
    monkeypatch.setattr(measure.os, 'cpu_count', lambda: 2)
    busy = iter([100.0, 100.0 + machine])
    mine = iter([10.0, 10.0 + own])
    clock = iter([50.0, 52.0])
    monkeypatch.setattr(measure, 'machine_busy_seconds', lambda: next(busy))
    monkeypatch.setattr(measure, 'own_cpu_seconds', lambda: next(mine))
    monkeypatch.setattr(measure.time, 'perf_counter', lambda: next(clock))
    lines = []
    with measure.LoadRecord(lines.append) as rec:
        pass
    assert rec.others_cores == pytest.approx(others / 2)
    assert rec.quiet is (not shared)
    assert len(lines) == (1 if shared else 0)
    if shared:
        assert 'other processes used 0.30 of 2 cores' in lines[0]


def test_machine_busy_seconds_reads_proc_stat():
    busy = measure.machine_busy_seconds()
    if busy is None:
        pytest.skip('no /proc/stat')
    own = measure.own_cpu_seconds()
    assert busy >= own >= 0
    assert measure.machine_busy_seconds() >= busy


def test_load_record_without_a_load_average(monkeypatch):
    def unavailable():
        raise OSError('no load average')
    monkeypatch.setattr(measure.os, 'getloadavg', unavailable)
    with measure.LoadRecord(lambda s: None) as rec:
        pass
    assert rec.as_dict()['before']['load'] is None
    assert 'n/a' in measure.format_load(rec.as_dict())


@pytest.mark.parametrize('others_now,busy', [(0.05, False), (0.5, True)])
def test_load_record_samples_the_cpu_when_the_average_is_high(
        monkeypatch, others_now, busy):
    """A high 1-minute average right after a job ended is not a busy
    machine: a 1-second sample of the other processes decides."""
    monkeypatch.setattr(measure.os, 'getloadavg', lambda: (1.8, 0.9, 0.5))
    monkeypatch.setattr(measure.os, 'cpu_count', lambda: 2)
    monkeypatch.setattr(measure.LoadRecord, '_sample_others',
                        lambda self, seconds: others_now)
    monkeypatch.setattr(measure, 'machine_busy_seconds', lambda: None)
    lines = []
    with measure.LoadRecord(lines.append) as rec:
        pass
    assert rec.before['others_cores_now'] == others_now
    assert rec.quiet is (not busy)
    assert len(lines) == (1 if busy else 0)
