# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Photometric view transforms of MoCo v2 / DenseCL on BGR uint8 images.

Images are BGR ``uint8`` arrays as ``mmcv`` loads them. The functions below
are the pixel operations; the transforms draw their parameters from numpy's
global RNG (what MMEngine seeds). Where an operation is exact in ``uint8`` it
runs through a 256-entry lookup table (brightness, contrast) or a single
OpenCV call; results are rounded to the nearest integer and saturated to
``[0, 255]`` (torchvision's tensor path truncates instead; PIL rounds).
Grey levels use ITU-R 601 luma, ``0.299 R + 0.587 G + 0.114 B``, which for a
BGR image are the channel weights ``(0.114, 0.587, 0.299)``.

Speed: on a 224 x 224 view each OpenCV call takes tens of microseconds, and
a fresh array of a few hundred KiB can cost as much again in page faults
(when glibc has just returned freed heap to the OS). So the hue rotation
converts its float buffer in place, and :class:`ColorJitter` applies its
second to fourth adjustments in place (``out=``) into the array the first
one made. Both are exact: the results are bit-identical to fresh arrays.
"""
from numbers import Number
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from densecl_plugin.registry import TRANSFORMS

#: luma weights of a BGR image (ITU-R 601: 0.299 R + 0.587 G + 0.114 B)
BGR_LUMA_WEIGHTS = (0.114, 0.587, 0.299)

Range = Optional[Tuple[float, float]]

#: 0, 1, ..., 255 as float64, the domain of the lookup tables
_LEVELS = np.arange(256.)


def _lut(img: np.ndarray, values: np.ndarray,
         out: Optional[np.ndarray] = None) -> np.ndarray:
    """Apply ``v -> round(values[v])`` (saturated) to a uint8 image."""
    table = np.clip(np.rint(values), 0, 255).astype(np.uint8)  # (256,)
    return cv2.LUT(img, table, dst=out)


def adjust_brightness(img: np.ndarray, factor: float,
                      out: Optional[np.ndarray] = None) -> np.ndarray:
    """Scale intensities: ``round(factor * x)`` saturated to uint8.

    Args:
        img (np.ndarray): BGR uint8 image (H, W, 3).
        factor (float): 0 gives black, 1 the input.
        out (np.ndarray, optional): Where to write the result (uint8, the
            shape of ``img``; may be ``img`` itself). Defaults to None (a
            new array).

    Returns:
        np.ndarray: The adjusted image (H, W, 3), uint8.
    """
    return _lut(img, factor * _LEVELS, out)


def grayscale_mean(img: np.ndarray) -> float:
    """The mean luma of a BGR image, computed exactly in float.

    Args:
        img (np.ndarray): BGR image (H, W, 3).

    Returns:
        float: ``mean(0.114 B + 0.587 G + 0.299 R)``.
    """
    channel_means = cv2.mean(img)[:3]  # (B, G, R) means, float64
    return float(np.dot(channel_means, BGR_LUMA_WEIGHTS))


def adjust_contrast(img: np.ndarray, factor: float,
                    out: Optional[np.ndarray] = None) -> np.ndarray:
    """Blend with the mean grey: ``round(factor * x + (1 - factor) * m)``.

    ``m`` is the image's mean luma (:func:`grayscale_mean`), as torchvision
    and PIL define contrast.

    Args:
        img (np.ndarray): BGR uint8 image (H, W, 3).
        factor (float): 0 gives a uniform grey image, 1 the input.
        out (np.ndarray, optional): Where to write the result (may be
            ``img``). Defaults to None (a new array).

    Returns:
        np.ndarray: The adjusted image (H, W, 3), uint8.
    """
    mean = grayscale_mean(img)
    return _lut(img, factor * _LEVELS + (1. - factor) * mean, out)


def to_grayscale(img: np.ndarray) -> np.ndarray:
    """Luma of a BGR uint8 image, kept as 3 equal channels.

    Args:
        img (np.ndarray): BGR uint8 image (H, W, 3).

    Returns:
        np.ndarray: ``round(0.114 B + 0.587 G + 0.299 R)`` in all 3 channels
        (H, W, 3), uint8.
    """
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)  # (H, W), BGR luma weights
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)  # (H, W, 3)


def adjust_saturation(img: np.ndarray, factor: float,
                      out: Optional[np.ndarray] = None) -> np.ndarray:
    """Blend with the pixel's grey: ``round(factor * x + (1 - factor) * g)``.

    ``g`` is the pixel's luma rounded to uint8 (:func:`to_grayscale`), as PIL
    and torchvision define saturation.

    Args:
        img (np.ndarray): BGR uint8 image (H, W, 3).
        factor (float): 0 gives the grey image, 1 the input.
        out (np.ndarray, optional): Where to write the result (may be
            ``img``). Defaults to None (a new array).

    Returns:
        np.ndarray: The adjusted image (H, W, 3), uint8.
    """
    return cv2.addWeighted(img, factor, to_grayscale(img), 1. - factor, 0.,
                           dst=out)


def adjust_hue(img: np.ndarray, factor: float,
               out: Optional[np.ndarray] = None) -> np.ndarray:
    """Rotate the hue by ``factor`` of a full turn (``factor`` in [-0.5, 0.5]).

    Works in float HSV (hue in degrees), so it is exact up to the final
    rounding and valid for negative and positive ``factor`` alike (unlike
    ``mmcv.adjust_hue`` under numpy 2, and without the 1/256-turn hue
    quantisation of a uint8 HSV round trip).

    Args:
        img (np.ndarray): BGR uint8 image (H, W, 3).
        factor (float): Hue shift as a fraction of 360 degrees.
        out (np.ndarray, optional): Where to write the result (may be
            ``img``). Defaults to None (a new array).

    Returns:
        np.ndarray: The adjusted image (H, W, 3), uint8.
    """
    if not -0.5 <= factor <= 0.5:
        raise ValueError(f'adjust_hue: factor must be in [-0.5, 0.5], but got '
                         f'{factor!r}')
    x = np.multiply(img, np.float32(1. / 255.), dtype=np.float32)  # (H,W,3)
    x = cv2.cvtColor(x, cv2.COLOR_BGR2HSV, dst=x)  # (H,W,3): H in [0, 360)
    # a shift in [0, 360): OpenCV wraps hues in [360, 720) (not negative ones)
    x[..., 0] += (360. * factor) % 360.
    x = cv2.cvtColor(x, cv2.COLOR_HSV2BGR, dst=x)  # (H, W, 3) in [0, 1]
    return cv2.convertScaleAbs(x, dst=out, alpha=255.)  # round, saturate


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with standard deviation ``sigma`` pixels.

    This is what PIL's ``ImageFilter.GaussianBlur(radius=sigma)`` means by
    *radius*: PIL approximates a Gaussian of standard deviation ``radius``
    with three box blurs of the same total variance and replicates edge
    pixels. Here the kernel is a true Gaussian of that ``sigma``, truncated
    by OpenCV at ``+-3 sigma`` (kernel size ``round(6 sigma + 1) | 1`` for
    uint8), with edge pixels replicated as PIL does. On a real photo the two
    differ by 0.3-0.5 grey levels on average (at most a few levels at sharp
    edges) for sigma in [0.5, 2]; ``tests/test_datasets/test_transforms/
    test_photometric_transforms.py`` checks it.

    Args:
        img (np.ndarray): Image (H, W, C).
        sigma (float): Standard deviation in pixels (> 0).

    Returns:
        np.ndarray: The blurred image, same shape and dtype.
    """
    return cv2.GaussianBlur(img, (0, 0), sigmaX=sigma, sigmaY=sigma,
                            borderType=cv2.BORDER_REPLICATE)


def _check_prob(prob: float, name: str) -> float:
    """``prob`` as a float, with ``name``'s error unless it is in [0, 1]."""
    if not 0. <= prob <= 1.:
        raise ValueError(f'{name}: prob must be in [0, 1], but got {prob!r}')
    return float(prob)


def _jitter_range(value: Union[float, Sequence[float]], name: str,
                  center: float, bound: Tuple[float, float]) -> Range:
    """torchvision's jitter range: ``v -> (center - v, center + v)``.

    Returns None when the range is the single point ``center`` (no-op).
    """
    if isinstance(value, Number):
        if value < 0:
            raise ValueError(f'ColorJitter: {name} must be non-negative, but '
                             f'got {value!r}')
        value = (center - value, center + value)
        if name != 'hue':
            value = (max(value[0], 0.), value[1])
    if (len(value) != 2
            or not bound[0] <= value[0] <= value[1] <= bound[1]):
        raise ValueError(f'ColorJitter: {name} must be a number or a '
                         f'(min, max) pair within {bound}, but got {value!r}')
    if value[0] == value[1] == center:
        return None
    return float(value[0]), float(value[1])


@TRANSFORMS.register_module()
class ColorJitter(BaseTransform):
    """Randomly change brightness, contrast, saturation and hue.

    As ``torchvision.transforms.ColorJitter``: each factor is drawn uniformly
    from its range and the four adjustments are applied in a random order;
    the whole jitter is applied with probability ``prob`` (MoCo v2 uses 0.8,
    there through ``RandomApply``). Defaults are MoCo v2's / DenseCL's.

    Required Keys:

    - img

    Modified Keys:

    - img

    Args:
        brightness (float | Sequence[float]): ``b`` draws the factor from
            ``[max(0, 1 - b), 1 + b]``; a pair gives the range itself.
            Defaults to 0.4.
        contrast (float | Sequence[float]): As ``brightness``.
            Defaults to 0.4.
        saturation (float | Sequence[float]): As ``brightness``.
            Defaults to 0.4.
        hue (float | Sequence[float]): ``h`` in [0, 0.5] draws the shift from
            ``[-h, h]`` (fractions of a full turn). Defaults to 0.1.
        prob (float): Probability of applying the jitter at all. Do not also
            wrap this transform in a ``RandomApply`` with its own probability
            unless the product is what you mean. Defaults to 0.8.
    """

    #: the adjustments, in the index order of the random permutation
    OPS = ('brightness', 'contrast', 'saturation', 'hue')

    def __init__(self,
                 brightness: Union[float, Sequence[float]] = 0.4,
                 contrast: Union[float, Sequence[float]] = 0.4,
                 saturation: Union[float, Sequence[float]] = 0.4,
                 hue: Union[float, Sequence[float]] = 0.1,
                 prob: float = 0.8) -> None:
        inf = float('inf')
        self.brightness = _jitter_range(brightness, 'brightness', 1., (0, inf))
        self.contrast = _jitter_range(contrast, 'contrast', 1., (0, inf))
        self.saturation = _jitter_range(saturation, 'saturation', 1.,
                                        (0, inf))
        self.hue = _jitter_range(hue, 'hue', 0., (-0.5, 0.5))
        self.prob = _check_prob(prob, 'ColorJitter')

    @cache_randomness
    def sample_params(self) -> Optional[List[Tuple[str, float]]]:
        """Draw whether to jitter, the order and the factors.

        Returns:
            list[tuple[str, float]] | None: ``None`` when not applied, else
            the ``(op, factor)`` pairs in the order to apply them (ops whose
            range is a no-op are left out).
        """
        if not np.random.rand() < self.prob:
            return None
        order = np.random.permutation(len(self.OPS))
        factors = {
            op: None if getattr(self, op) is None else np.random.uniform(
                *getattr(self, op))
            for op in self.OPS
        }
        return [(self.OPS[i], float(factors[self.OPS[i]])) for i in order
                if factors[self.OPS[i]] is not None]

    def transform(self, results: Dict) -> Dict:
        """Jitter ``results['img']`` (BGR uint8).

        Args:
            results (dict): The results dict of one view.

        Returns:
            dict: The results with the jittered image.
        """
        params = self.sample_params()
        if params is None:
            return results
        img = results['img']
        for i, (op, factor) in enumerate(params):
            # the first op makes a new array, the others overwrite it
            img = _ADJUST[op](img, factor, out=None if i == 0 else img)
        results['img'] = img
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(brightness={self.brightness}, '
                f'contrast={self.contrast}, saturation={self.saturation}, '
                f'hue={self.hue}, prob={self.prob})')


_ADJUST = dict(
    brightness=adjust_brightness,
    contrast=adjust_contrast,
    saturation=adjust_saturation,
    hue=adjust_hue)


@TRANSFORMS.register_module()
class RandomGrayscale(BaseTransform):
    """Convert the view to grey (3 equal channels) with probability ``prob``.

    Uses the BGR luma weights ``(0.114, 0.587, 0.299)`` (:func:`to_grayscale`).

    Required Keys:

    - img

    Modified Keys:

    - img

    Args:
        prob (float): Probability of the conversion. Defaults to 0.2.
    """

    def __init__(self, prob: float = 0.2) -> None:
        self.prob = _check_prob(prob, 'RandomGrayscale')

    @cache_randomness
    def sample_apply(self) -> bool:
        """Whether to convert (numpy's global RNG)."""
        return bool(np.random.rand() < self.prob)

    def transform(self, results: Dict) -> Dict:
        """Convert ``results['img']`` to grey or not.

        Args:
            results (dict): The results dict of one view.

        Returns:
            dict: The results with the (maybe) grey image.
        """
        if self.sample_apply():
            results['img'] = to_grayscale(results['img'])
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(prob={self.prob})'


@TRANSFORMS.register_module()
class GaussianBlur(BaseTransform):
    """Blur the view with a random sigma with probability ``prob``.

    MoCo v2 / DenseCL apply PIL's ``GaussianBlur(radius=sigma)`` with
    ``sigma ~ U(0.1, 2.0)`` at p=0.5; PIL's radius is the Gaussian's standard
    deviation, see :func:`gaussian_blur` for how closely OpenCV matches it.

    Required Keys:

    - img

    Modified Keys:

    - img

    Args:
        sigma (float | Sequence[float]): ``(min, max)`` range of the standard
            deviation in pixels, or one fixed value. Defaults to
            ``(0.1, 2.0)``.
        prob (float): Probability of blurring. Defaults to 0.5.
    """

    def __init__(self,
                 sigma: Union[float, Sequence[float]] = (0.1, 2.0),
                 prob: float = 0.5) -> None:
        if isinstance(sigma, Number):
            sigma = (sigma, sigma)
        if len(sigma) != 2 or not 0 < sigma[0] <= sigma[1]:
            raise ValueError('GaussianBlur: sigma must be a positive number '
                             'or a (min, max) pair with 0 < min <= max, but '
                             f'got {sigma!r}')
        self.sigma = (float(sigma[0]), float(sigma[1]))
        self.prob = _check_prob(prob, 'GaussianBlur')

    @cache_randomness
    def sample_sigma(self) -> Optional[float]:
        """The sigma to blur with, or None for no blur."""
        if not np.random.rand() < self.prob:
            return None
        return float(np.random.uniform(*self.sigma))

    def transform(self, results: Dict) -> Dict:
        """Blur ``results['img']`` or not.

        Args:
            results (dict): The results dict of one view.

        Returns:
            dict: The results with the (maybe) blurred image.
        """
        sigma = self.sample_sigma()
        if sigma is not None:
            results['img'] = gaussian_blur(results['img'], sigma)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(sigma={self.sigma}, '
                f'prob={self.prob})')


__all__ = ['ColorJitter', 'RandomGrayscale', 'GaussianBlur',
           'adjust_brightness', 'adjust_contrast', 'adjust_saturation',
           'adjust_hue', 'to_grayscale', 'grayscale_mean', 'gaussian_blur',
           'BGR_LUMA_WEIGHTS']
