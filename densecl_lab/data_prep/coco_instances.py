# Copyright (c) densecl_plugin contributors. All rights reserved.
"""A tiny COCO instance-segmentation layout from real annotations.

Output (what mmdet's ``CocoDataset`` / ``CocoMetric`` read)::

    <out_dir>/coco/annotations/instances_train2017.json
                               instances_val2017.json
                  train2017/*.jpg   val2017/*.jpg

Two categories:

- ``nucleus``: stardist's 2-D nuclei image cut into tiles; every nucleus
  that keeps >= ``min_visible`` of its pixels in a tile is an instance with
  its real mask, as polygons (``mask_format='polygon'``, outer contours) or
  as exact RLE (``'rle'``);
- ``tree`` (``include_trees``): deepforest's tree crown boxes; deepforest
  has no crown outlines, so their masks are the box rectangles.
"""
import json
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .sources import DEEPFOREST_IMAGES, load_stardist_nuclei
from .tiling import resize_image, resize_labels, split_indices, tile_grid
from .voc_detection import deepforest_tiles

CATEGORIES = ({'id': 1, 'name': 'nucleus'}, {'id': 2, 'name': 'tree'})


@dataclass
class CocoLayout:
    """What :func:`build_coco_instances` wrote.

    Attributes:
        data_root (str): the ``coco/`` folder (mmdet's ``data_root``).
        classes (tuple[str]): category names in id order.
        num_images (dict[str, int]): ``'train2017'`` / ``'val2017'`` -> n.
        num_instances (dict[str, int]): instances per split.
    """
    data_root: str
    classes: Tuple[str, ...]
    num_images: Dict[str, int] = field(default_factory=dict)
    num_instances: Dict[str, int] = field(default_factory=dict)


def mask_to_polygons(mask: np.ndarray) -> List[List[float]]:
    """Outer contours of a binary mask as COCO polygons (x, y, x, y, ...).

    Contours with fewer than 3 points are dropped.
    """
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_NONE)
    return [c.reshape(-1).astype(float).tolist() for c in contours
            if len(c) >= 3]


def mask_to_rle(mask: np.ndarray) -> dict:
    """A binary mask as COCO compressed RLE (``counts`` as str)."""
    from pycocotools import mask as mask_utils
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle['counts'] = rle['counts'].decode('ascii')
    return rle


def nuclei_instance_tiles(tile_size: int = 128,
                          out_size: Optional[int] = None,
                          min_visible: float = 0.5,
                          cache_dir: Optional[str] = None
                          ) -> List[Tuple[str, np.ndarray, List[np.ndarray]]]:
    """Cut the stardist nuclei image into tiles with per-instance masks.

    Args:
        tile_size (int): tile side in source pixels. Defaults to 128.
        out_size (int, optional): resized tile side. Defaults to None.
        min_visible (float): keep a nucleus with at least this share of its
            pixels in the tile. Defaults to 0.5.
        cache_dir (str, optional): the data cache root. Defaults to None.

    Returns:
        list: ``(name, RGB tile, [binary (h, w) mask per instance])``.
    """
    image, instances = load_stardist_nuclei(cache_dir)
    full_area = np.bincount(instances.ravel())
    tiles = []
    for (x0, y0, x1, y1) in tile_grid(*instances.shape, tile_size):
        img, ins = image[y0:y1, x0:x1], instances[y0:y1, x0:x1]
        ids, counts = np.unique(ins[ins > 0], return_counts=True)
        keep = ids[counts >= min_visible * full_area[ids]]
        if out_size:
            size = (out_size, out_size)
            img, ins = resize_image(img, size), resize_labels(ins, size)
        masks = [m for m in ((ins == i) for i in keep) if m.sum() >= 4]
        if masks:
            tiles.append((f'nuclei_x{x0}_y{y0}', img, masks))
    return tiles


def build_coco_instances(out_dir: str,
                         nuclei_tile: int = 128,
                         nuclei_out_size: Optional[int] = None,
                         include_trees: bool = True,
                         tree_images: Sequence[str] = DEEPFOREST_IMAGES[:2],
                         tree_tile: int = 200,
                         tree_out_size: Optional[int] = None,
                         mask_format: str = 'polygon',
                         val_fraction: float = 0.25,
                         min_visible: float = 0.5,
                         seed: int = 0,
                         cache_dir: Optional[str] = None) -> CocoLayout:
    """Write a COCO-style instance segmentation set.

    Args:
        out_dir (str): where ``coco/`` goes.
        nuclei_tile (int): nuclei tile side in source pixels. Defaults to 128.
        nuclei_out_size (int, optional): resized nuclei tile side.
            Defaults to None.
        include_trees (bool): add deepforest tree tiles (box-shaped masks).
            Defaults to True.
        tree_images (Sequence[str]): deepforest images for the trees.
            Defaults to ``('OSBS_029', 'SOAP_061')``.
        tree_tile (int): tree tile side in source pixels. Defaults to 200.
        tree_out_size (int, optional): resized tree tile side.
            Defaults to None.
        mask_format (str): ``'polygon'`` or ``'rle'`` for the nuclei.
            Defaults to ``'polygon'``.
        val_fraction (float): share of each source's tiles in ``val2017``.
            Defaults to 0.25.
        min_visible (float): keep a cut instance with at least this share of
            its area. Defaults to 0.5.
        seed (int): split seed. Defaults to 0.
        cache_dir (str, optional): the data cache root. Defaults to None.

    Returns:
        CocoLayout: paths, classes and counts.
    """
    if mask_format not in ('polygon', 'rle'):
        raise ValueError(f"mask_format must be 'polygon' or 'rle', got "
                         f'{mask_format!r}')
    # (name, image, [(category_id, mask or None, box x1y1x2y2)])
    samples = []
    for name, img, masks in nuclei_instance_tiles(nuclei_tile,
                                                  nuclei_out_size,
                                                  min_visible, cache_dir):
        anns = []
        for m in masks:
            ys, xs = np.nonzero(m)
            anns.append((1, m, (xs.min(), ys.min(), xs.max() + 1,
                                ys.max() + 1)))
        samples.append((name, img, anns))
    groups = [list(range(len(samples)))]
    if include_trees:
        trees = deepforest_tiles(tree_images, tree_tile, tree_out_size,
                                 min_visible, cache_dir=cache_dir)
        start = len(samples)
        samples += [(t.name, t.image, [(2, None, tuple(b)) for b in t.boxes])
                    for t in trees]
        groups.append(list(range(start, len(samples))))
    split_of = {}
    for group in groups:  # split each source on its own
        train, val = split_indices(len(group), val_fraction, seed)
        split_of.update({group[i]: 'train2017' for i in train})
        split_of.update({group[i]: 'val2017' for i in val})

    data_root = osp.join(out_dir, 'coco')
    os.makedirs(osp.join(data_root, 'annotations'), exist_ok=True)
    layout = CocoLayout(data_root, tuple(c['name'] for c in CATEGORIES))
    for split in ('train2017', 'val2017'):
        os.makedirs(osp.join(data_root, split), exist_ok=True)
        images, annotations = [], []
        for idx, (name, img, anns) in enumerate(samples):
            if split_of[idx] != split:
                continue
            image_id = len(images) + 1
            h, w = img.shape[:2]
            cv2.imwrite(osp.join(data_root, split, f'{name}.jpg'),
                        img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
            images.append(dict(id=image_id, file_name=f'{name}.jpg',
                               width=w, height=h))
            for cat, mask, (x1, y1, x2, y2) in anns:
                if mask is None:  # a box: its rectangle is the mask
                    seg = [[float(v) for v in (x1, y1, x2, y1, x2, y2, x1,
                                               y2)]]
                    area = (x2 - x1) * (y2 - y1)
                else:
                    seg = mask_to_polygons(mask) if mask_format == 'polygon' \
                        else mask_to_rle(mask)
                    area = int(mask.sum())
                    if not seg:
                        continue
                annotations.append(dict(
                    id=len(annotations) + 1, image_id=image_id,
                    category_id=cat, iscrowd=0, area=float(area),
                    bbox=[float(x1), float(y1), float(x2 - x1),
                          float(y2 - y1)],
                    segmentation=seg))
        with open(osp.join(data_root, 'annotations',
                           f'instances_{split}.json'), 'w') as f:
            json.dump(dict(images=images, annotations=annotations,
                           categories=list(CATEGORIES)), f)
        layout.num_images[split] = len(images)
        layout.num_instances[split] = len(annotations)
    return layout
