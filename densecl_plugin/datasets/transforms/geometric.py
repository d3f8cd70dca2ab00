# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Geometric view transforms that record what they did.

Every view made by these transforms satisfies, exactly::

    view = hflip?( resize( crop(I, crop_bbox), img_shape ) )

where ``I`` is the *loaded* image (``ori_shape``), ``crop_bbox`` is
``(x1, y1, x2, y2)`` in continuous pixel-edge coordinates of ``I`` (pixel
``(r, c)`` covers ``[c, c + 1) x [r, r + 1)``, so ``x2 - x1`` is the crop
width), ``img_shape`` is the view's ``(h, w)`` and ``hflip`` (``flip``) is a
horizontal flip applied *after* the crop. So the centre of view pixel
``(v, u)`` shows the image point::

    u' = (w - 1 - u) if flip else u
    x  = x1 + (u' + 0.5) * (x2 - x1) / w
    y  = y1 + (v  + 0.5) * (y2 - y1) / h

which is also the sampling convention of ``cv2.resize`` (pixel centres
aligned). The transforms compose: a crop or flip of an already cropped or
flipped view updates the record so that the equation above still holds (see
:func:`view_box_to_image_box`). Transforms of other libraries do not update
the record; a pure resize keeps it valid, any other geometric change does not.
"""
import math
from numbers import Number
from typing import Dict, Sequence, Tuple, Union

import cv2
import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from densecl_plugin.registry import TRANSFORMS
from .photometric import _check_prob

Box = Tuple[float, float, float, float]

#: interpolation names accepted by :class:`RandomResizedCrop` per backend
_INTERPOLATIONS = {
    'cv2': ('nearest', 'bilinear', 'bicubic', 'area', 'lanczos'),
    'pillow': ('nearest', 'bilinear', 'bicubic', 'box', 'lanczos', 'hamming'),
}


def get_ori_shape(results: Dict) -> Tuple[int, int]:
    """The ``(h, w)`` of the loaded image, set from ``img`` when absent.

    Args:
        results (dict): The results dict of a pipeline.

    Returns:
        tuple[int, int]: ``results['ori_shape']``.
    """
    if 'ori_shape' not in results:
        results['ori_shape'] = tuple(results['img'].shape[:2])
    h, w = results['ori_shape'][:2]
    return int(h), int(w)


def get_view_record(results: Dict) -> Dict:
    """The geometry record of the view in ``results``.

    Args:
        results (dict): The results dict of one view.

    Returns:
        dict: ``dict(crop_bbox=(x1, y1, x2, y2), flip=bool, img_shape=(h, w))``
        with the defaults of the data contract: the whole loaded image when no
        crop was made, no flip when none was made, and the view's own shape.
    """
    ori_h, ori_w = get_ori_shape(results)
    x1, y1, x2, y2 = results.get('crop_bbox', (0., 0., ori_w, ori_h))
    h, w = results['img'].shape[:2]
    return dict(
        crop_bbox=(float(x1), float(y1), float(x2), float(y2)),
        flip=bool(results.get('flip', False)),
        img_shape=(int(h), int(w)))


def view_box_to_image_box(results: Dict, box: Sequence[float]) -> Box:
    """Map a box in the current view's pixel coordinates to the loaded image.

    Args:
        results (dict): The results dict of the view, with its record so far.
        box (Sequence[float]): ``(x1, y1, x2, y2)`` in pixel-edge coordinates
            of the current view ``results['img']``.

    Returns:
        tuple[float, float, float, float]: The same region of the loaded image
        (pixel-edge coordinates). The view's ``flip`` is unchanged by a crop:
        cropping a flipped view equals flipping the mirrored crop.
    """
    record = get_view_record(results)
    h, w = record['img_shape']
    bx1, by1, bx2, by2 = box
    if record['flip']:  # the view is mirrored: un-mirror the box first
        bx1, bx2 = w - bx2, w - bx1
    x1, y1, x2, y2 = record['crop_bbox']
    sx, sy = (x2 - x1) / w, (y2 - y1) / h  # image pixels per view pixel
    return (x1 + bx1 * sx, y1 + by1 * sy, x1 + bx2 * sx, y1 + by2 * sy)


def _pair(size: Union[int, Sequence[int]], name: str) -> Tuple[int, int]:
    """``size`` as ``(h, w)`` positive ints, with a clear error otherwise."""
    if isinstance(size, Number):
        size = (size, size)
    if (len(size) != 2 or not all(isinstance(s, (int, np.integer)) and s > 0
                                  for s in size)):
        raise ValueError(f'{name} must be a positive int or a (h, w) pair of '
                         f'positive ints, but got {size!r}')
    return int(size[0]), int(size[1])


def _range(value: Sequence[float], name: str, low: float = 0.) -> Tuple[float,
                                                                        float]:
    """``value`` as an increasing ``(lo, hi)`` pair above ``low``."""
    if len(value) != 2 or not low < value[0] <= value[1]:
        raise ValueError(f'{name} must be a (min, max) pair with '
                         f'{low} < min <= max, but got {tuple(value)!r}')
    return float(value[0]), float(value[1])


@TRANSFORMS.register_module()
class RandomResizedCrop(BaseTransform):
    """Crop a random region and resize it, as torchvision samples it.

    The region's area is a uniform fraction of the image area in ``scale`` and
    its aspect ratio (w/h) is log-uniform in ``ratio``; a sample that does not
    fit the image is redrawn up to ``max_attempts`` times, after which the
    largest centred crop whose ratio lies in ``ratio`` is used (the whole
    image when the image's own ratio is in range), exactly as
    ``torchvision.transforms.RandomResizedCrop.get_params``. Randomness comes
    from numpy's global RNG (seeded by MMEngine's ``randomness`` config and
    per dataloader worker).

    Required Keys:

    - img

    Modified Keys:

    - img
    - img_shape

    Added Keys:

    - crop_bbox: the crop in loaded-image pixels (see the module docstring)
    - ori_shape: when absent, the input image's shape

    Args:
        size (int | Sequence[int]): Output size, ``(h, w)`` (torchvision's
            order) or one int for a square.
        scale (Sequence[float]): Range of the crop's area as a fraction of the
            image area. Defaults to ``(0.2, 1.)`` (MoCo v2 / DenseCL).
        ratio (Sequence[float]): Range of the crop's aspect ratio ``w / h``.
            Defaults to ``(3 / 4, 4 / 3)``.
        interpolation (str): Resize interpolation: ``'nearest'``,
            ``'bilinear'``, ``'bicubic'``, ``'area'``, ``'lanczos'`` (and
            ``'box'``, ``'hamming'`` with pillow). Defaults to ``'bilinear'``.
        max_attempts (int): Draws before the centre-crop fallback.
            Defaults to 10.
        backend (str): ``'cv2'`` (fast) or ``'pillow'`` (antialiased like the
            authors' PIL pipeline when shrinking). Defaults to ``'cv2'``.
    """

    def __init__(self,
                 size: Union[int, Sequence[int]],
                 scale: Sequence[float] = (0.2, 1.),
                 ratio: Sequence[float] = (3. / 4., 4. / 3.),
                 interpolation: str = 'bilinear',
                 max_attempts: int = 10,
                 backend: str = 'cv2') -> None:
        self.size = _pair(size, 'RandomResizedCrop: size')
        self.scale = _range(scale, 'RandomResizedCrop: scale')
        if self.scale[1] > 1:
            raise ValueError('RandomResizedCrop: scale is a fraction of the '
                             f'image area, at most 1, but got {tuple(scale)}')
        self.ratio = _range(ratio, 'RandomResizedCrop: ratio')
        if backend not in _INTERPOLATIONS:
            raise ValueError(f'RandomResizedCrop: backend must be one of '
                             f'{tuple(_INTERPOLATIONS)}, but got {backend!r}')
        if interpolation not in _INTERPOLATIONS[backend]:
            raise ValueError(
                f'RandomResizedCrop: interpolation {interpolation!r} is not '
                f'supported by the {backend} backend; expected one of '
                f'{_INTERPOLATIONS[backend]}')
        if not isinstance(max_attempts, int) or max_attempts < 0:
            raise ValueError('RandomResizedCrop: max_attempts must be an int '
                             f'>= 0, but got {max_attempts!r}')
        self.interpolation = interpolation
        self.max_attempts = max_attempts
        self.backend = backend

    @cache_randomness
    def sample_crop(self, height: int, width: int) -> Tuple[int, int, int,
                                                            int]:
        """Draw a crop of an image of the given size.

        Args:
            height (int): Image height.
            width (int): Image width.

        Returns:
            tuple[int, int, int, int]: ``(x, y, w, h)``: the crop's top-left
            corner and size in pixels.
        """
        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(self.max_attempts):
            target_area = area * np.random.uniform(*self.scale)
            aspect_ratio = math.exp(np.random.uniform(*log_ratio))
            w = int(round(math.sqrt(target_area * aspect_ratio)))
            h = int(round(math.sqrt(target_area / aspect_ratio)))
            if 0 < w <= width and 0 < h <= height:
                y = np.random.randint(0, height - h + 1)
                x = np.random.randint(0, width - w + 1)
                return x, y, w, h
        # fallback: the largest centred crop with a ratio in range
        in_ratio = width / height
        if in_ratio < self.ratio[0]:
            w, h = width, int(round(width / self.ratio[0]))
        elif in_ratio > self.ratio[1]:
            w, h = int(round(height * self.ratio[1])), height
        else:
            w, h = width, height
        return (width - w) // 2, (height - h) // 2, w, h

    def transform(self, results: Dict) -> Dict:
        """Crop and resize ``results['img']`` and record the crop.

        Args:
            results (dict): The results dict of one view.

        Returns:
            dict: The results with the resized crop and its record.
        """
        img = results['img']
        x, y, w, h = self.sample_crop(*img.shape[:2])
        results['crop_bbox'] = view_box_to_image_box(results,
                                                     (x, y, x + w, y + h))
        crop = img[y:y + h, x:x + w]  # a view: no copy before resizing
        out_h, out_w = self.size
        if (h, w) == (out_h, out_w):
            results['img'] = crop.copy()
        else:
            results['img'] = mmcv.imresize(
                crop, (out_w, out_h),
                interpolation=self.interpolation,
                backend=self.backend)
        results['img_shape'] = (out_h, out_w)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(size={self.size}, '
                f'scale={self.scale}, ratio={self.ratio}, '
                f'interpolation={self.interpolation!r}, '
                f'max_attempts={self.max_attempts}, backend={self.backend!r})')


@TRANSFORMS.register_module()
class RandomFlip(BaseTransform):
    """Flip the view horizontally with probability ``prob``.

    Required Keys:

    - img

    Modified Keys:

    - img
    - flip: toggled when the view is flipped (so that two flips cancel)

    Added Keys:

    - ori_shape, crop_bbox: the view's record is completed (see
      :func:`get_view_record`) so that it stays valid

    Args:
        prob (float): Probability of a flip. Defaults to 0.5.
    """

    def __init__(self, prob: float = 0.5) -> None:
        self.prob = _check_prob(prob, 'RandomFlip')

    @cache_randomness
    def sample_flip(self) -> bool:
        """Whether to flip (numpy's global RNG)."""
        return bool(np.random.rand() < self.prob)

    def transform(self, results: Dict) -> Dict:
        """Flip ``results['img']`` or not, and record it.

        Args:
            results (dict): The results dict of one view.

        Returns:
            dict: The results with the (maybe) flipped view and its record.
        """
        record = get_view_record(results)
        results['crop_bbox'] = record['crop_bbox']
        flip = self.sample_flip()
        if flip:
            results['img'] = cv2.flip(results['img'], 1)  # horizontal
        results['flip'] = record['flip'] ^ flip
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(prob={self.prob})'


__all__ = ['RandomResizedCrop', 'RandomFlip', 'get_view_record',
           'get_ori_shape', 'view_box_to_image_box']
