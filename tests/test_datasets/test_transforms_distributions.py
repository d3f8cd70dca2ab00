# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The MoCo v2 view pipeline end to end: what thousands of views draw, and
pixel equality with the transforms as they were before the speed-ups.

The draws are recorded inside the real ``MultiView`` pipeline of the config
(wrapping each transform's sampling method), and checked against the
configured laws: the crop against an independent plain-loop torchvision
sampler written here, the rest against their uniform/Bernoulli laws; the
views' pixels and records are checked to agree with the draws.
"""
import itertools
import math
import os.path as osp
from collections import defaultdict

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from scipy import stats

from densecl_lab.benchmarks.baseline_transforms import (
    build_pipeline, load_baseline_transforms)
from densecl_plugin.datasets.transforms import (ColorJitter, MultiView,
                                                adjust_brightness,
                                                adjust_contrast, adjust_hue,
                                                adjust_saturation)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PIPELINE_CFG = osp.join(REPO, 'configs/_base_/datasets/mocov2_pipeline.py')
#: the transforms before issue 8's in-place hue and ColorJitter chaining
BASELINE_REV = '5f71dec99b0c4ffaf834803ac4ed10eb3a656211'
SAMPLERS = ('sample_crop', 'sample_params', 'sample_apply', 'sample_sigma',
            'sample_flip')
#: views per distribution test; with p-values > 1e-4 the false-alarm rate of
#: the ~15 checks below is about 1e-3
N_IMAGES = 1200
P_MIN = 1e-4


@pytest.fixture(scope='module', autouse=True)
def own_registry_scope():
    """Build in our registry scope, whatever default scope an earlier test
    left current (an mmseg Runner leaves ``mmseg``, which lacks our
    transforms)."""
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('densecl_plugin'):
        yield

def _view_pipeline(size: int) -> list:
    cfg = Config.fromfile(PIPELINE_CFG)
    view = [dict(t) for t in cfg.view_pipeline]
    view[0]['size'] = size
    return view


def _record_draws(multi_view: MultiView) -> dict:
    """Wrap every sampling method in the views' pipeline to record draws."""
    draws = defaultdict(list)
    composes = {id(c): c for c in multi_view.pipelines}.values()
    for compose in composes:
        for t in compose.transforms:
            for name in SAMPLERS:
                if hasattr(t, name):
                    def record(*args, _f=getattr(t, name), _n=name):
                        out = _f(*args)
                        draws[_n].append(out)
                        return out
                    setattr(t, name, record)
    return draws


def _torchvision_crop(rng, height, width, scale=(0.2, 1.),
                      ratio=(3 / 4, 4 / 3)):
    """torchvision's RandomResizedCrop.get_params, as plain loops."""
    area = height * width
    for _ in range(10):
        target = area * rng.uniform(*scale)
        r = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        w = int(round(math.sqrt(target * r)))
        h = int(round(math.sqrt(target / r)))
        if 0 < w <= width and 0 < h <= height:
            return w, h
    return width, height  # square-ish images never get here in practice


@pytest.fixture(scope='module')
def photo(real_image_paths):
    """A real colour photo (the astronaut), 96 x 96."""
    img = cv2.imread(real_image_paths[0])
    return cv2.resize(img, (96, 96), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope='module')
def many_views(photo):
    """N_IMAGES x 2 views of the photo, 16 px, with every draw recorded."""
    multi_view = MultiView(num_views=2, transforms=[_view_pipeline(16)])
    draws = _record_draws(multi_view)
    np.random.seed(0)
    outs = [multi_view(dict(img=photo))
            for _ in range(N_IMAGES)]
    return draws, outs


def test_draw_counts_follow_the_pipeline_order(many_views):
    draws, _ = many_views
    views = 2 * N_IMAGES
    for name in SAMPLERS:  # one draw of each transform per view
        assert len(draws[name]) == views, name


def test_crop_area_and_ratio_follow_torchvision(many_views, photo):
    draws, outs = many_views
    crops = np.array(draws['sample_crop'])  # (x, y, w, h) per view
    h_img, w_img = photo.shape[:2]
    area = crops[:, 2] * crops[:, 3] / (h_img * w_img)
    rng = np.random.default_rng(1)
    ref = np.array([_torchvision_crop(rng, h_img, w_img)
                    for _ in range(20000)])
    ref_area = ref[:, 0] * ref[:, 1] / (h_img * w_img)
    assert stats.ks_2samp(area, ref_area).pvalue > P_MIN
    log_ratio = np.log(crops[:, 2] / crops[:, 3])
    ref_log_ratio = np.log(ref[:, 0] / ref[:, 1])
    assert stats.ks_2samp(log_ratio, ref_log_ratio).pvalue > P_MIN
    assert area.min() >= 0.2 - 0.03 and area.max() <= 1.
    # the records hold exactly the drawn crops
    boxes = np.array([v['crop_bbox'] for o in outs for v in o['views']])
    np.testing.assert_array_equal(boxes[:, :2], crops[:, :2])
    np.testing.assert_array_equal(boxes[:, 2:] - boxes[:, :2], crops[:, 2:])


def test_color_jitter_rate_ranges_and_orders(many_views):
    draws, _ = many_views
    params = draws['sample_params']
    applied = [p for p in params if p is not None]
    n = len(params)
    assert abs(len(applied) / n - 0.8) < 4 * math.sqrt(0.16 / n)
    factors = defaultdict(list)
    for p in applied:
        assert sorted(op for op, _ in p) == sorted(ColorJitter.OPS)
        for op, f in p:
            factors[op].append(f)
    for op in ('brightness', 'contrast', 'saturation'):
        f = np.array(factors[op])
        assert f.min() >= 0.6 and f.max() <= 1.4
        assert stats.kstest(f, stats.uniform(0.6, 0.8).cdf).pvalue > P_MIN
    hue = np.array(factors['hue'])
    assert hue.min() >= -0.1 and hue.max() <= 0.1
    assert stats.kstest(hue, stats.uniform(-0.1, 0.2).cdf).pvalue > P_MIN
    orders = [tuple(op for op, _ in p) for p in applied]
    counts = [orders.count(o) for o in itertools.permutations(ColorJitter.OPS)]
    assert stats.chisquare(counts).pvalue > P_MIN


def test_grayscale_blur_flip_rates_and_sigma(many_views):
    draws, outs = many_views
    n = 2 * N_IMAGES
    for name, p in (('sample_apply', 0.2), ('sample_flip', 0.5)):
        rate = np.mean(draws[name])
        assert abs(rate - p) < 4 * math.sqrt(p * (1 - p) / n), name
    sigmas = draws['sample_sigma']
    blurred = np.array([s for s in sigmas if s is not None])
    assert abs(len(blurred) / n - 0.5) < 4 * math.sqrt(0.25 / n)
    assert blurred.min() >= 0.1 and blurred.max() <= 2.0
    assert stats.kstest(blurred, stats.uniform(0.1, 1.9).cdf).pvalue > P_MIN
    # the views show the draws: grey exactly when drawn, flips recorded
    imgs = [img for o in outs for img in o['img']]
    grey = [bool((img[..., 0] == img[..., 1]).all()
                 and (img[..., 1] == img[..., 2]).all()) for img in imgs]
    assert grey == list(draws['sample_apply'])
    flips = [v['flip'] for o in outs for v in o['views']]
    assert flips == list(draws['sample_flip'])


def test_the_two_views_draw_independently(many_views):
    draws, _ = many_views
    crops = np.array(draws['sample_crop'])
    area = (crops[:, 2] * crops[:, 3]).reshape(N_IMAGES, 2)
    r = np.corrcoef(area[:, 0], area[:, 1])[0, 1]
    assert abs(r) < 4 / math.sqrt(N_IMAGES)
    flips = np.array(draws['sample_flip']).reshape(N_IMAGES, 2)
    same = np.mean(flips[:, 0] == flips[:, 1])
    assert abs(same - 0.5) < 4 * math.sqrt(0.25 / N_IMAGES)


@pytest.mark.parametrize('adjust, factors', [
    (adjust_brightness, [0., 0.6, 1.37]),
    (adjust_contrast, [0., 0.6, 1.37]),
    (adjust_saturation, [0., 0.6, 1.37]),
    (adjust_hue, [-0.5, -0.1, 0., 0.07, 0.5]),
])
def test_in_place_output_equals_a_fresh_one(photo, adjust, factors):
    for factor in factors:
        fresh = adjust(photo, factor)
        assert fresh is not photo
        buf = photo.copy()
        out = adjust(buf, factor, out=buf)
        assert out is buf  # written where asked
        np.testing.assert_array_equal(out, fresh)


def test_color_jitter_never_writes_into_its_input(photo):
    img = photo.copy()
    img.flags.writeable = False  # as MultiView shares the loaded image
    jitter = ColorJitter(prob=1.)
    for seed in range(8):
        np.random.seed(seed)
        out = jitter(dict(img=img))['img']
        assert out is not img and out.flags.writeable
    np.testing.assert_array_equal(img, photo)


@pytest.fixture(scope='module')
def baseline_transforms():
    try:
        return load_baseline_transforms(BASELINE_REV, REPO)
    except RuntimeError as e:  # e.g. a source tarball or a shallow clone
        pytest.skip(f'the baseline revision {BASELINE_REV[:10]} is not in '
                    f'this checkout\'s git history: {e}')


def test_views_are_pixel_identical_to_the_previous_transforms(
        baseline_transforms, real_image_paths):
    cfg = Config.fromfile(PIPELINE_CFG)
    for t in cfg.train_pipeline[1]['transforms'][0]:
        if t['type'] == 'RandomResizedCrop':
            t['size'] = 64
    # each in its own registry scope (whatever default scope is left)
    current = build_pipeline(cfg.train_pipeline)
    before = build_pipeline(cfg.train_pipeline, baseline_transforms)
    assert type(before.transforms[1]) is not type(current.transforms[1])
    for seed, path in enumerate(real_image_paths * 3):
        outs = []
        for pipeline in (before, current):
            np.random.seed(seed)
            outs.append(pipeline(dict(img_path=path)))
        for a, b in zip(outs[0]['inputs'], outs[1]['inputs']):
            assert a.dtype == b.dtype and a.shape == b.shape
            assert bool((a == b).all()), (path, seed)
        assert outs[0]['data_samples'].views == outs[1]['data_samples'].views


@pytest.mark.parametrize('name', ['adjust_brightness', 'adjust_contrast',
                                  'adjust_saturation', 'adjust_hue'])
def test_adjustments_equal_the_previous_ones(baseline_transforms, photo,
                                             name):
    import densecl_plugin.datasets.transforms as current
    rng = np.random.default_rng(0)
    for _ in range(10):
        factor = (rng.uniform(-0.5, 0.5) if name == 'adjust_hue' else
                  rng.uniform(0., 2.))
        np.testing.assert_array_equal(
            getattr(current, name)(photo, factor),
            getattr(baseline_transforms, name)(photo, factor))
