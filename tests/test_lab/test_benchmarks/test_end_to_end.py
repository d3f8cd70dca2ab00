# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The end-to-end benchmark (``benchmark_step.py --end-to-end --peer``) on
the demo's setting and a few real JPEGs, the mmcv hue fix it needs for
mmpretrain's pipeline under numpy 2: structure and arithmetic, no
timings."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

from densecl_lab.benchmarks.end_to_end import (OURS_BEST, OURS_FP32, PEER,
                                               adjust_hue_numpy2,
                                               benchmark_end_to_end,
                                               build_variants, crop_size_of,
                                               format_end_to_end,
                                               numpy2_safe_mmcv_hue,
                                               scenario_config, set_crop_size)

TESTS = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
STANDIN = osp.join(TESTS, 'peers', 'standin')


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
    # the configs split BN in 2 groups; mmpretrain cannot, so neither runs it
    assert cfg.model.split_bn_groups == demo.model.split_bn_groups == 1
    assert demo.model.queue_len == 64
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
        (16, 80, 64, 18)
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
