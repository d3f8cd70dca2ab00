# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Resize an image so that one edge has a given length."""
from typing import Dict

import mmcv
from mmcv.transforms import BaseTransform

from densecl_plugin.registry import TRANSFORMS

_EDGES = ('short', 'long', 'height', 'width')


@TRANSFORMS.register_module()
class ResizeEdge(BaseTransform):
    """Resize keeping the aspect ratio, so that ``edge`` becomes ``scale``.

    The test transform of the linear protocol is ``ResizeEdge(scale=256,
    edge='short')`` then a 224 centre crop (torchvision's ``Resize(256)``;
    the other edge is ``int(scale * other / edge)``, truncated as
    torchvision truncates it, and at least 1).

    Required Keys:

    - img

    Modified Keys:

    - img
    - img_shape

    Added Keys:

    - scale_factor: ``(w_scale, h_scale)``

    Args:
        scale (int): target length of ``edge``.
        edge (str): ``'short'``, ``'long'``, ``'height'`` or ``'width'``.
            Defaults to ``'short'``.
        interpolation (str): ``mmcv.imresize`` interpolation. Defaults to
            ``'bilinear'``.
        backend (str): ``'cv2'`` or ``'pillow'``. Defaults to ``'cv2'``.
    """

    def __init__(self,
                 scale: int,
                 edge: str = 'short',
                 interpolation: str = 'bilinear',
                 backend: str = 'cv2') -> None:
        if not isinstance(scale, int) or scale < 1:
            raise ValueError(f'ResizeEdge: scale must be a positive int, got '
                             f'{scale!r}')
        if edge not in _EDGES:
            raise ValueError(f'ResizeEdge: edge must be one of {_EDGES}, got '
                             f'{edge!r}')
        if backend not in ('cv2', 'pillow'):
            raise ValueError(f"ResizeEdge: backend must be 'cv2' or "
                             f"'pillow', got {backend!r}")
        self.scale = scale
        self.edge = edge
        self.interpolation = interpolation
        self.backend = backend

    def target_size(self, h: int, w: int) -> tuple:
        """The output ``(h, w)`` for an ``(h, w)`` input."""
        if self.edge == 'short':
            by_height = h <= w
        elif self.edge == 'long':
            by_height = h > w
        else:
            by_height = self.edge == 'height'
        if by_height:
            return self.scale, max(1, int(self.scale * w / h))
        return max(1, int(self.scale * h / w)), self.scale

    def transform(self, results: Dict) -> Dict:
        """Resize ``results['img']``.

        Args:
            results (dict): the results dict.

        Returns:
            dict: the results with the resized image.
        """
        img = results['img']
        h, w = img.shape[:2]
        out_h, out_w = self.target_size(h, w)
        if (out_h, out_w) != (h, w):
            img = mmcv.imresize(img, (out_w, out_h),
                                interpolation=self.interpolation,
                                backend=self.backend)
        results['img'] = img
        results['img_shape'] = (out_h, out_w)
        results['scale_factor'] = (out_w / w, out_h / h)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(scale={self.scale}, '
                f'edge={self.edge!r}, interpolation={self.interpolation!r}, '
                f'backend={self.backend!r})')
