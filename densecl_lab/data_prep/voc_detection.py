# Copyright (c) densecl_plugin contributors. All rights reserved.
"""A tiny Pascal VOC07+12 detection layout from deepforest's tree crowns.

Output (what mmdet's ``VOCDataset`` and our VOC07+12 C4 config read)::

    <out_dir>/VOCdevkit/
        VOC2007/JPEGImages/*.jpg  Annotations/*.xml
                ImageSets/Main/trainval.txt  test.txt
        VOC2012/JPEGImages/*.jpg  Annotations/*.xml
                ImageSets/Main/trainval.txt

The deepforest tiles are cut into ``tile_size`` windows (boxes cut by a
window border are clipped and kept when >= ``min_visible`` of their area is
inside), optionally resized to ``out_size``, split into train / test, and the
training tiles are dealt alternately to VOC2007 and VOC2012 ``trainval``.
XML boxes are written in VOC's 1-based inclusive convention
(``xmin = x1 + 1``, ``xmax = x2``), which mmdet reads back as ``x1, x2 - 1``.
"""
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .sources import DEEPFOREST_IMAGES, load_deepforest_image
from .tiling import crop_boxes, resize_image, split_indices, tile_grid

#: deepforest's labels ('Alive' / 'Dead' trees in SOAP_061) -> one class
TREE_CLASS = 'Tree'


@dataclass
class DetectionTile:
    """One tile: RGB image, (N, 4) float32 boxes (pixel edges), labels."""
    name: str
    image: np.ndarray
    boxes: np.ndarray
    labels: List[str]


@dataclass
class VOCDetectionLayout:
    """What :func:`build_voc_detection` wrote.

    Attributes:
        data_root (str): the ``VOCdevkit/`` folder (mmdet's ``data_root``).
        classes (tuple[str]): the class names (``metainfo.classes``).
        splits (dict[str, list[str]]): ``'VOC2007/trainval'``,
            ``'VOC2012/trainval'``, ``'VOC2007/test'`` -> image ids.
        num_boxes (dict[str, int]): boxes per split.
    """
    data_root: str
    classes: Tuple[str, ...]
    splits: Dict[str, List[str]] = field(default_factory=dict)
    num_boxes: Dict[str, int] = field(default_factory=dict)


def deepforest_tiles(images: Sequence[str] = DEEPFOREST_IMAGES,
                     tile_size: int = 200,
                     out_size: Optional[int] = None,
                     min_visible: float = 0.5,
                     merge_labels: bool = True,
                     max_tiles: Optional[int] = None,
                     cache_dir: Optional[str] = None) -> List[DetectionTile]:
    """Cut deepforest images into annotated tiles.

    Args:
        images (Sequence[str]): deepforest image stems. Defaults to
            :data:`~.sources.DEEPFOREST_IMAGES`.
        tile_size (int): window side in source pixels. Defaults to 200.
        out_size (int, optional): resize each (square) tile to this side;
            edge tiles of images smaller than ``tile_size`` keep their aspect
            ratio. Defaults to None (no resize).
        min_visible (float): keep a box when this share of its area is in
            the tile. Defaults to 0.5.
        merge_labels (bool): map every label to ``'Tree'``. Defaults to True.
        max_tiles (int, optional): stop after this many non-empty tiles.
            Defaults to None.
        cache_dir (str, optional): the data cache root. Defaults to None.

    Returns:
        list[DetectionTile]: tiles with at least one box.
    """
    tiles = []
    for name in images:
        src = load_deepforest_image(name, cache_dir)
        h, w = src.image.shape[:2]
        for (x0, y0, x1, y1) in tile_grid(h, w, tile_size):
            boxes, keep = crop_boxes(src.boxes, (x0, y0, x1, y1), min_visible)
            if not len(keep):
                continue
            img = src.image[y0:y1, x0:x1]
            if out_size:
                scale = out_size / max(img.shape[:2])
                size = (max(1, round(img.shape[1] * scale)),
                        max(1, round(img.shape[0] * scale)))
                boxes = boxes * np.asarray(
                    [size[0] / img.shape[1], size[1] / img.shape[0]] * 2,
                    np.float32)
                img = resize_image(img, size)
            labels = [TREE_CLASS if merge_labels else src.labels[i]
                      for i in keep]
            tiles.append(DetectionTile(f'{name}_x{x0}_y{y0}',
                                       np.ascontiguousarray(img), boxes,
                                       labels))
            if max_tiles and len(tiles) >= max_tiles:
                return tiles
    return tiles


def voc_xml(filename: str, width: int, height: int, boxes: np.ndarray,
            labels: Sequence[str]) -> str:
    """A Pascal VOC annotation (1-based inclusive box corners)."""
    objs = []
    for (x1, y1, x2, y2), label in zip(boxes, labels):
        xmin, ymin = int(round(x1)) + 1, int(round(y1)) + 1
        xmax = max(int(round(x2)), xmin)
        ymax = max(int(round(y2)), ymin)
        truncated = int(x1 <= 0 or y1 <= 0 or x2 >= width or y2 >= height)
        objs.append(
            f'  <object>\n    <name>{label}</name>\n'
            f'    <pose>Unspecified</pose>\n'
            f'    <truncated>{truncated}</truncated>\n'
            f'    <difficult>0</difficult>\n    <bndbox>\n'
            f'      <xmin>{xmin}</xmin>\n      <ymin>{ymin}</ymin>\n'
            f'      <xmax>{xmax}</xmax>\n      <ymax>{ymax}</ymax>\n'
            f'    </bndbox>\n  </object>\n')
    return (f'<annotation>\n  <folder>VOC</folder>\n'
            f'  <filename>{filename}</filename>\n'
            f'  <source><database>deepforest 2.1.0 (NEON)</database>'
            f'</source>\n'
            f'  <size>\n    <width>{width}</width>\n'
            f'    <height>{height}</height>\n    <depth>3</depth>\n'
            f'  </size>\n  <segmented>0</segmented>\n'
            + ''.join(objs) + '</annotation>\n')


def _write_voc_image(folder: str, tile: DetectionTile) -> None:
    h, w = tile.image.shape[:2]
    cv2.imwrite(osp.join(folder, 'JPEGImages', f'{tile.name}.jpg'),
                tile.image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    with open(osp.join(folder, 'Annotations', f'{tile.name}.xml'), 'w') as f:
        f.write(voc_xml(f'{tile.name}.jpg', w, h, tile.boxes, tile.labels))


def build_voc_detection(out_dir: str,
                        images: Sequence[str] = DEEPFOREST_IMAGES,
                        tile_size: int = 200,
                        out_size: Optional[int] = None,
                        val_fraction: float = 0.25,
                        min_visible: float = 0.5,
                        merge_labels: bool = True,
                        max_tiles: Optional[int] = None,
                        seed: int = 0,
                        cache_dir: Optional[str] = None
                        ) -> VOCDetectionLayout:
    """Write a VOC07+12-style detection set of deepforest tiles.

    Args:
        out_dir (str): where ``VOCdevkit/`` goes.
        images (Sequence[str]): deepforest image stems.
            Defaults to :data:`~.sources.DEEPFOREST_IMAGES`.
        tile_size (int): tile side in source pixels. Defaults to 200.
        out_size (int, optional): resized tile side (e.g. 128 for CPU
            tests). Defaults to None (``tile_size``).
        val_fraction (float): share of tiles in ``VOC2007/test``.
            Defaults to 0.25.
        min_visible (float): keep a cut box with at least this share of its
            area. Defaults to 0.5.
        merge_labels (bool): one class ``'Tree'``; otherwise deepforest's
            labels (``Tree``, ``Alive``, ``Dead``). Defaults to True.
        max_tiles (int, optional): at most this many tiles. Defaults to None.
        seed (int): split seed. Defaults to 0.
        cache_dir (str, optional): the data cache root. Defaults to None.

    Returns:
        VOCDetectionLayout: paths, classes and splits.
    """
    tiles = deepforest_tiles(images, tile_size, out_size, min_visible,
                             merge_labels, max_tiles, cache_dir)
    train_idx, val_idx = split_indices(len(tiles), val_fraction, seed)
    if len(train_idx) < 2:
        raise ValueError(f'{len(tiles)} tiles leave {len(train_idx)} for '
                         'training; VOC2007 and VOC2012 trainval need one '
                         'each: lower tile_size or val_fraction')
    classes = tuple(sorted({lb for t in tiles for lb in t.labels}))
    data_root = osp.join(out_dir, 'VOCdevkit')
    parts = {'VOC2007/trainval': [tiles[i] for i in train_idx[0::2]],
             'VOC2012/trainval': [tiles[i] for i in train_idx[1::2]],
             'VOC2007/test': [tiles[i] for i in val_idx]}
    layout = VOCDetectionLayout(data_root, classes)
    for split, split_tiles in parts.items():
        year, name = split.split('/')
        folder = osp.join(data_root, year)
        for sub in ('JPEGImages', 'Annotations', 'ImageSets/Main'):
            os.makedirs(osp.join(folder, sub), exist_ok=True)
        for tile in split_tiles:
            _write_voc_image(folder, tile)
        with open(osp.join(folder, 'ImageSets/Main', f'{name}.txt'), 'w') as f:
            f.writelines(f'{t.name}\n' for t in split_tiles)
        layout.splits[split] = [t.name for t in split_tiles]
        layout.num_boxes[split] = sum(len(t.boxes) for t in split_tiles)
    return layout
