# Copyright (c) densecl_plugin contributors. All rights reserved.
"""ColorJitter / RandomGrayscale / GaussianBlur against references in the test.

The references are plain float formulas (and ``colorsys`` loops for the hue)
on real photos; the transforms run on uint8 lookup tables and OpenCV.
"""
import colorsys
import itertools

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFilter
from scipy import stats

from densecl_plugin.datasets.transforms import (ColorJitter, GaussianBlur,
                                                RandomGrayscale,
                                                adjust_brightness,
                                                adjust_contrast, adjust_hue,
                                                adjust_saturation,
                                                gaussian_blur, to_grayscale)

LUMA_BGR = np.array([0.114, 0.587, 0.299])  # 0.299 R + 0.587 G + 0.114 B


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def ref_brightness(img, f):
    return _u8(img.astype(float) * f)


def ref_contrast(img, f):
    mean = (img.astype(float) @ LUMA_BGR).mean()
    return _u8(f * img.astype(float) + (1 - f) * mean)


def ref_gray(img):
    return np.repeat(_u8(img.astype(float) @ LUMA_BGR)[..., None], 3, axis=2)


def ref_saturation(img, f):
    return _u8(f * img.astype(float) + (1 - f) * ref_gray(img).astype(float))


def ref_hue(img, f):
    out = np.empty(img.shape, float)
    for r, c in itertools.product(*map(range, img.shape[:2])):
        b, g, red = img[r, c] / 255.
        h, s, v = colorsys.rgb_to_hsv(red, g, b)
        red, g, b = colorsys.hsv_to_rgb((h + f) % 1., s, v)
        out[r, c] = (b * 255, g * 255, red * 255)
    return _u8(out)


def ref_blur(img, sigma):
    """Separable Gaussian, OpenCV's uint8 kernel size, replicated edges."""
    ksize = int(round(sigma * 3 * 2 + 1)) | 1
    radius = ksize // 2
    taps = np.exp(-(np.arange(ksize) - radius)**2 / (2 * sigma**2))
    taps /= taps.sum()  # (ksize,)
    x = np.pad(img.astype(float), ((radius, radius), (radius, radius), (0, 0)),
               mode='edge')
    x = np.einsum('hwck,k->hwc',
                  np.lib.stride_tricks.sliding_window_view(x, ksize, axis=1),
                  taps)  # (H+2r, W, C)
    x = np.einsum('hwck,k->hwc',
                  np.lib.stride_tricks.sliding_window_view(x, ksize, axis=0),
                  taps)  # (H, W, C)
    return _u8(x)


REFERENCES = dict(brightness=ref_brightness, contrast=ref_contrast,
                  saturation=ref_saturation, hue=ref_hue)


@pytest.fixture(scope='module')
def photo(real_image_paths):
    """A real photo (chelsea the cat), 48x72."""
    img = cv2.imread(real_image_paths[1])
    return cv2.resize(img, (72, 48), interpolation=cv2.INTER_AREA)


def _assert_close(out, ref, max_diff=1, max_frac=0.01):
    assert out.dtype == np.uint8 and out.shape == ref.shape
    diff = np.abs(out.astype(int) - ref.astype(int))
    assert diff.max() <= max_diff, diff.max()
    assert (diff > 0).mean() <= max_frac, (diff > 0).mean()


@pytest.mark.parametrize('factor', [0., 0.6, 1., 1.37])
def test_brightness_and_contrast_match_formulas_exactly(photo, factor):
    np.testing.assert_array_equal(adjust_brightness(photo, factor),
                                  ref_brightness(photo, factor))
    np.testing.assert_array_equal(adjust_contrast(photo, factor),
                                  ref_contrast(photo, factor))


@pytest.mark.parametrize('factor', [0., 0.6, 1.37])
def test_saturation_matches_formula(photo, factor):
    _assert_close(adjust_saturation(photo, factor),
                  ref_saturation(photo, factor))


def test_grayscale_uses_bgr_luma_weights_and_keeps_3_channels(photo):
    gray = to_grayscale(photo)
    assert gray.shape == photo.shape
    assert (gray[..., 0] == gray[..., 1]).all()
    assert (gray[..., 1] == gray[..., 2]).all()
    _assert_close(gray, ref_gray(photo))
    # RGB weights applied to BGR data (the classic bug) are far off
    wrong = _u8(photo.astype(float) @ LUMA_BGR[::-1])
    assert np.abs(gray[..., 0].astype(int) - wrong).max() > 10


@pytest.mark.parametrize('factor', [-0.5, -0.1, -0.03, 0., 0.05, 0.1, 0.5])
def test_hue_rotation_matches_colorsys_for_negative_and_positive(photo,
                                                                 factor):
    small = photo[::3, ::3]  # 16x24: the reference loops over pixels
    out = adjust_hue(small, factor)
    _assert_close(out, ref_hue(small, factor), max_diff=1, max_frac=0.02)
    if factor != 0:
        assert np.abs(out.astype(int) - small).max() > 10


def test_hue_factor_out_of_range_is_named(photo):
    with pytest.raises(ValueError, match='factor'):
        adjust_hue(photo, 0.7)


@pytest.mark.parametrize('sigma', [0.1, 0.7, 1.3, 2.0])
def test_gaussian_blur_matches_separable_reference(photo, sigma):
    # OpenCV's uint8 blur uses a fixed-point kernel: off by one at times
    _assert_close(gaussian_blur(photo, sigma), ref_blur(photo, sigma),
                  max_frac=0.1)


@pytest.mark.parametrize('sigma', [0.5, 1.0, 2.0])
def test_gaussian_blur_is_close_to_pil_radius_semantics(photo, sigma):
    ours = gaussian_blur(photo, sigma).astype(int)
    rgb = Image.fromarray(np.ascontiguousarray(photo[..., ::-1]))
    pil = np.asarray(rgb.filter(ImageFilter.GaussianBlur(radius=sigma)))
    diff = np.abs(ours - pil[..., ::-1])
    assert diff.mean() < 0.75
    # and both are far from the unblurred image
    assert np.abs(ours - photo).mean() > 3 * diff.mean()


def test_color_jitter_draws_like_torchvision():
    np.random.seed(0)
    jitter = ColorJitter()  # MoCo v2: 0.4, 0.4, 0.4, 0.1 at p=0.8
    draws = [jitter.sample_params() for _ in range(3000)]
    applied = [d for d in draws if d is not None]
    assert abs(len(applied) / len(draws) - 0.8) < 0.03
    factors = {op: np.array([dict(d)[op] for d in applied])
               for op in ColorJitter.OPS}
    for op in ('brightness', 'contrast', 'saturation'):
        assert factors[op].min() >= 0.6 and factors[op].max() <= 1.4
        assert stats.kstest(factors[op],
                            stats.uniform(0.6, 0.8).cdf).pvalue > 1e-3
    assert factors['hue'].min() >= -0.1 and factors['hue'].max() <= 0.1
    assert stats.kstest(factors['hue'],
                        stats.uniform(-0.1, 0.2).cdf).pvalue > 1e-3
    orders = [tuple(op for op, _ in d) for d in applied]
    counts = [orders.count(p) for p in itertools.permutations(ColorJitter.OPS)]
    assert sum(counts) == len(applied)  # every order is a permutation
    assert stats.chisquare(counts).pvalue > 1e-3


def test_color_jitter_applies_drawn_ops_in_drawn_order(photo):
    small = photo[::3, ::3]
    jitter = ColorJitter(prob=1.)
    for seed in range(4):
        np.random.seed(seed)
        out = jitter(dict(img=small))['img']
        np.random.seed(seed)
        ref = small
        for op, factor in jitter.sample_params():
            ref = REFERENCES[op](ref, factor)
        # rounding differences of one op can grow by the next factors
        _assert_close(out, ref, max_diff=3, max_frac=0.05)


def test_color_jitter_application_rate_on_pixels():
    np.random.seed(1)
    img = np.random.randint(0, 256, (6, 6, 3), np.uint8)
    jitter = ColorJitter(prob=0.8)
    changed = [not np.array_equal(jitter(dict(img=img))['img'], img)
               for _ in range(300)]
    assert abs(np.mean(changed) - 0.8) < 0.07  # sd 0.023


def test_color_jitter_with_no_op_ranges_is_identity(photo):
    jitter = ColorJitter(brightness=0, contrast=0, saturation=0, hue=0,
                         prob=1.)
    assert jitter.sample_params() == []
    np.testing.assert_array_equal(jitter(dict(img=photo))['img'], photo)


def test_grayscale_rate():
    np.random.seed(2)
    img = np.random.randint(0, 256, (4, 4, 3), np.uint8)
    gray = RandomGrayscale()  # p=0.2
    is_gray = []
    for _ in range(1000):
        out = gray(dict(img=img))['img']
        is_gray.append(bool((out[..., 0] == out[..., 2]).all()))
        if not is_gray[-1]:
            assert out is img
    assert abs(np.mean(is_gray) - 0.2) < 0.04  # sd 0.013


def test_blur_rate_sigma_range_and_pixels(photo):
    np.random.seed(3)
    blur = GaussianBlur()  # sigma ~ U(0.1, 2.0), p=0.5
    sigmas = [blur.sample_sigma() for _ in range(3000)]
    drawn = np.array([s for s in sigmas if s is not None])
    assert abs(len(drawn) / len(sigmas) - 0.5) < 0.03
    assert drawn.min() >= 0.1 and drawn.max() <= 2.0
    assert stats.kstest(drawn, stats.uniform(0.1, 1.9).cdf).pvalue > 1e-3
    for seed in range(6):
        np.random.seed(seed)
        out = blur(dict(img=photo))['img']
        np.random.seed(seed)
        sigma = blur.sample_sigma()
        ref = photo if sigma is None else ref_blur(photo, sigma)
        _assert_close(out, ref, max_frac=0.1)


@pytest.mark.parametrize('build, match', [
    (lambda: ColorJitter(hue=0.6), 'hue'),
    (lambda: ColorJitter(brightness=-0.1), 'brightness'),
    (lambda: ColorJitter(contrast=(1.5, 0.5)), 'contrast'),
    (lambda: ColorJitter(prob=2), 'prob'),
    (lambda: RandomGrayscale(prob=-0.1), 'prob'),
    (lambda: GaussianBlur(sigma=(0., 1.)), 'sigma'),
    (lambda: GaussianBlur(sigma=(2., 1.)), 'sigma'),
    (lambda: GaussianBlur(prob=1.1), 'prob'),
])
def test_bad_arguments_are_named(build, match):
    with pytest.raises(ValueError, match=match):
        build()
