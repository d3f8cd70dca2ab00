# Copyright (c) densecl_plugin contributors. All rights reserved.
"""RandomResizedCrop / RandomFlip: sampling distributions, pixels, records."""
import math

import cv2
import numpy as np
import pytest
from PIL import Image
from scipy import stats

from densecl_plugin.datasets.transforms import (RandomFlip, RandomResizedCrop,
                                                view_box_to_image_box)

LOG_R = math.log(4 / 3)


def _accepted_area_cdf(a: np.ndarray) -> np.ndarray:
    """CDF of the area fraction of torchvision's sampler on a square image.

    A draw (A ~ U[0.2, 1], log r ~ U[-L, L], L = log 4/3) fits a square
    image iff A*r <= 1 and A/r <= 1, i.e. |log r| <= -log A, so
    P(fit | A) = min(1, -log A / L) and the first draw that fits has density
    proportional to it (the centre-crop fallback after 10 misses has
    probability ~1e-12 here).
    """
    grid = np.linspace(0.2, 1., 20001)
    density = np.minimum(1., -np.log(grid) / LOG_R)
    cdf = np.concatenate([[0.], np.cumsum((density[1:] + density[:-1]) / 2 *
                                          np.diff(grid))])
    return np.interp(a, grid, cdf / cdf[-1])


def test_crop_area_and_log_ratio_follow_torchvision_sampling():
    np.random.seed(0)
    rrc = RandomResizedCrop(size=8)
    side = 1000
    crops = np.array([rrc.sample_crop(side, side) for _ in range(4000)])
    x, y, w, h = crops.T
    assert (x >= 0).all() and (y >= 0).all()
    assert (x + w <= side).all() and (y + h <= side).all()
    area = w * h / side**2
    assert area.min() >= 0.2 - 2e-3 and area.max() <= 1.
    assert stats.kstest(area, _accepted_area_cdf).pvalue > 1e-3
    # plain U[0.2, 1] is the wrong law here (misses at large areas): the
    # check has the power to tell them apart
    assert stats.kstest(area, stats.uniform(0.2, 0.8).cdf).pvalue < 1e-3
    # below 3/4 of the area every ratio fits: log-ratio ~ U[log 3/4, log 4/3]
    log_ratio = np.log(w / h)[area < 0.74]
    assert log_ratio.min() >= -LOG_R - 2e-3 and log_ratio.max() <= LOG_R + 2e-3
    assert stats.kstest(log_ratio,
                        stats.uniform(-LOG_R, 2 * LOG_R).cdf).pvalue > 1e-3
    # positions uniform over the valid range
    rel_x = x / np.maximum(side - w, 1)
    assert stats.kstest(rel_x, 'uniform').pvalue > 1e-3


@pytest.mark.parametrize('shape, expected', [
    ((10, 1000), (493, 0, 13, 10)),  # too wide: h = H, w = round(H * 4/3)
    ((1000, 10), (0, 493, 10, 13)),  # too tall: w = W, h = round(W / (3/4))
])
def test_fallback_is_torchvision_centre_crop(shape, expected):
    np.random.seed(0)
    assert RandomResizedCrop(size=4).sample_crop(*shape) == expected


def test_fallback_with_ratio_in_range_is_whole_image():
    rrc = RandomResizedCrop(4, max_attempts=0)
    assert rrc.sample_crop(30, 40) == (0, 0, 40, 30)


@pytest.mark.parametrize('interpolation', ['bilinear', 'nearest', 'bicubic',
                                           'area'])
def test_view_is_cv2_resize_of_recorded_crop(real_image_paths, interpolation):
    codes = dict(bilinear=cv2.INTER_LINEAR, nearest=cv2.INTER_NEAREST,
                 bicubic=cv2.INTER_CUBIC, area=cv2.INTER_AREA)
    np.random.seed(1)
    rrc = RandomResizedCrop(size=(24, 32), interpolation=interpolation)
    for path in real_image_paths:
        img = cv2.imread(path)
        for _ in range(3):
            out = rrc(dict(img=img))
            x1, y1, x2, y2 = out['crop_bbox']
            assert all(isinstance(v, float) and v == int(v)
                       for v in out['crop_bbox'])
            ref = cv2.resize(img[int(y1):int(y2), int(x1):int(x2)], (32, 24),
                             interpolation=codes[interpolation])
            np.testing.assert_array_equal(out['img'], ref)
            assert out['img_shape'] == (24, 32)
            assert out['ori_shape'] == img.shape[:2]


def test_pillow_backend_is_pil_resize_of_recorded_crop(real_image_paths):
    np.random.seed(2)
    img = cv2.imread(real_image_paths[0])
    out = RandomResizedCrop(size=20, backend='pillow')(dict(img=img))
    x1, y1, x2, y2 = map(int, out['crop_bbox'])
    ref = np.asarray(
        Image.fromarray(img[y1:y2, x1:x2]).resize((20, 20),
                                                  Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(out['img'], ref)


def test_flip_is_applied_and_recorded(real_image_paths):
    np.random.seed(3)
    img = cv2.imread(real_image_paths[1])
    rrc, flip = RandomResizedCrop(size=16), RandomFlip(prob=0.5)
    flips = []
    for _ in range(400):
        out = flip(rrc(dict(img=img)))
        x1, y1, x2, y2 = map(int, out['crop_bbox'])
        ref = cv2.resize(img[y1:y2, x1:x2], (16, 16))
        if out['flip']:
            ref = ref[:, ::-1]
        np.testing.assert_array_equal(out['img'], ref)
        flips.append(out['flip'])
    assert abs(np.mean(flips) - 0.5) < 0.08  # 400 draws: sd 0.025


def test_flip_rate_and_two_flips_cancel():
    np.random.seed(4)
    flip = RandomFlip(prob=0.5)
    assert abs(np.mean([flip.sample_flip() for _ in range(4000)]) - .5) < .03
    img = np.random.randint(0, 256, (5, 7, 3), np.uint8)
    always = RandomFlip(prob=1.)
    once = always(dict(img=img))
    assert once['flip'] is True
    np.testing.assert_array_equal(once['img'], img[:, ::-1])
    twice = always(once)
    assert twice['flip'] is False
    np.testing.assert_array_equal(twice['img'], img)
    assert twice['crop_bbox'] == (0., 0., 7., 5.)


def _coordinate_image(h: int, w: int) -> np.ndarray:
    """float32 image whose pixel (r, c) holds its centre (c + .5, r + .5)."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    return np.stack([xs, ys, np.zeros_like(xs)], axis=-1)  # (h, w, 3)


def _expected_image_points(record: dict):
    """Image point at each view pixel centre, from the record (contract)."""
    x1, y1, x2, y2 = record['crop_bbox']
    h, w = record['img_shape']
    u = np.arange(w) + 0.5
    if record['flip']:
        u = u[::-1]
    v = np.arange(h) + 0.5
    xs = x1 + u * (x2 - x1) / w  # (w,)
    ys = y1 + v * (y2 - y1) / h  # (h,)
    return np.broadcast_to(xs, (h, w)), np.broadcast_to(ys[:, None], (h, w))


@pytest.mark.parametrize('pipeline', [
    [RandomResizedCrop(40, scale=(0.5, 1.))],
    [RandomResizedCrop((30, 40), scale=(0.5, 1.)), RandomFlip(1.)],
    [RandomFlip(1.), RandomResizedCrop(40, scale=(0.5, 1.))],
    [RandomResizedCrop(100, scale=(0.5, 1.)), RandomFlip(0.5),
     RandomResizedCrop((40, 30), scale=(0.5, 1.)), RandomFlip(0.5)],
])
def test_record_maps_view_pixels_to_image_points(pipeline):
    """Bilinear resampling keeps a linear image exact (no upsampling here),
    so each view pixel must hold the image point its record predicts,
    whatever the order or number of crops and flips."""
    img = _coordinate_image(300, 400)
    np.random.seed(5)
    for _ in range(20):
        results = dict(img=img)
        for t in pipeline:
            results = t(results)
        record = dict(crop_bbox=results['crop_bbox'],
                      flip=results.get('flip', False),
                      img_shape=results['img_shape'])
        xs, ys = _expected_image_points(record)
        np.testing.assert_allclose(results['img'][..., 0], xs, atol=2e-3)
        np.testing.assert_allclose(results['img'][..., 1], ys, atol=2e-3)


def test_view_box_to_image_box_known_answers():
    results = dict(img=np.zeros((100, 50, 3), np.uint8), ori_shape=(400, 300),
                   crop_bbox=(10., 20., 110., 220.))  # 2 image px per view px
    assert view_box_to_image_box(results, (0, 0, 25, 50)) == (10., 20., 60.,
                                                              120.)
    results['flip'] = True  # view column u shows un-flipped column 49 - u
    assert view_box_to_image_box(results, (0, 0, 25, 50)) == (60., 20., 110.,
                                                              120.)


@pytest.mark.parametrize('kwargs, match', [
    (dict(size=0), 'size'),
    (dict(size=(8, 8, 8)), 'size'),
    (dict(size=8, scale=(0., 1.)), 'scale'),
    (dict(size=8, scale=(0.5, 0.2)), 'scale'),
    (dict(size=8, scale=(0.2, 1.5)), 'at most 1'),
    (dict(size=8, ratio=(4 / 3, 3 / 4)), 'ratio'),
    (dict(size=8, interpolation='cubic'), 'interpolation'),
    (dict(size=8, backend='skimage'), 'backend'),
    (dict(size=8, max_attempts=-1), 'max_attempts'),
])
def test_bad_crop_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RandomResizedCrop(**kwargs)


def test_bad_flip_prob_is_named():
    with pytest.raises(ValueError, match='prob'):
        RandomFlip(prob=1.5)
