# Copyright (c) densecl_plugin contributors. All rights reserved.
"""A two-class (background / nucleus) segmentation set in mmseg's plain
``img_dir`` / ``ann_dir`` layout, from stardist's real nuclei image.

Output (what mmseg's ``BaseSegDataset`` reads with
``metainfo=dict(classes=NUCLEI_CLASSES)``, ``reduce_zero_label=False``)::

    <out_dir>/img_dir/train/<name>.png   ann_dir/train/<name>.png
              img_dir/val/<name>.png     ann_dir/val/<name>.png

Images are RGB PNGs (the grey nuclei image in 3 channels, lossless); labels
are single-channel PNGs with 0 = background, 1 = nucleus. The tiles and
their split come from
:func:`~densecl_lab.data_prep.segmentation_layouts.nuclei_semantic_tiles`,
so the same ``tile_size`` / ``val_fraction`` / ``seed`` give the same split
as the VOC12 / Cityscapes / ADE20K layouts.
"""
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

from .segmentation_layouts import nuclei_semantic_tiles

#: class names, in label order
NUCLEI_CLASSES: Tuple[str, str] = ('background', 'nucleus')
#: their display colours (RGB)
NUCLEI_PALETTE: Tuple[Tuple[int, int, int], ...] = ((0, 0, 0), (255, 64, 64))


@dataclass
class BinarySegmentationLayout:
    """What :func:`build_binary_segmentation` wrote.

    Attributes:
        data_root (str): mmseg's ``data_root``.
        classes (tuple[str]): :data:`NUCLEI_CLASSES`.
        splits (dict[str, list[str]]): ``'train'`` / ``'val'`` -> names.
        foreground_fraction (dict[str, float]): nucleus share of the pixels
            of each split.
    """
    data_root: str
    classes: Tuple[str, ...] = NUCLEI_CLASSES
    splits: Dict[str, List[str]] = field(default_factory=dict)
    foreground_fraction: Dict[str, float] = field(default_factory=dict)


def build_binary_segmentation(out_dir: str, tile_size: int = 128,
                              out_size: Optional[int] = None,
                              val_fraction: float = 0.25, seed: int = 0,
                              cache_dir: Optional[str] = None
                              ) -> BinarySegmentationLayout:
    """Write the nuclei tiles and their 0/1 masks in the plain layout.

    Args:
        out_dir (str): the ``data_root`` to write.
        tile_size (int): tile side in source pixels. Defaults to 128.
        out_size (int, optional): resized tile side. Defaults to None.
        val_fraction (float): share of tiles in ``val``. Defaults to 0.25.
        seed (int): split seed. Defaults to 0.
        cache_dir (str, optional): the data cache root. Defaults to None.

    Returns:
        BinarySegmentationLayout: paths, splits and foreground shares.
    """
    parts = nuclei_semantic_tiles(tile_size, out_size, val_fraction, seed,
                                  cache_dir)
    layout = BinarySegmentationLayout(out_dir)
    for split, tiles in parts.items():
        fg_pixels = total = 0
        for name, img, fg in tiles:
            for kind, array in (('img_dir', img[..., ::-1]),
                                ('ann_dir', fg.astype(np.uint8))):
                path = osp.join(out_dir, kind, split, f'{name}.png')
                os.makedirs(osp.dirname(path), exist_ok=True)
                if not cv2.imwrite(path, array):
                    raise OSError(f'could not write {path}')
            fg_pixels += int(fg.sum())
            total += fg.size
        layout.splits[split] = [t[0] for t in tiles]
        layout.foreground_fraction[split] = fg_pixels / max(total, 1)
    return layout
