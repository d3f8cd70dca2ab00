# Copyright (c) densecl_plugin contributors. All rights reserved.
"""mmcv's ``LoadImageFromFile``, registered in our scope.

With ``default_scope='densecl_plugin'`` an unprefixed ``type`` is looked up in
our registry and then MMEngine's root, never in mmcv's node, so mmcv's loader
is registered here under its own name (the same class, as mmpretrain does).
It loads BGR ``uint8`` images and sets ``img``, ``img_shape`` and
``ori_shape``. :class:`~densecl_plugin.datasets.UnlabeledImageDataset` turns
its failures into an error that names the file.
"""
from mmcv.transforms import LoadImageFromFile

from densecl_plugin.registry import TRANSFORMS

TRANSFORMS.register_module(module=LoadImageFromFile)

__all__ = ['LoadImageFromFile']
