# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Tiny semantic segmentation sets in the VOC12-aug, Cityscapes and ADE20K
layouts, from stardist's real nuclei image and mask.

No package ships dense labels of natural scenes (see the offline data notes),
so the one real dense annotation available, 125 nuclei outlined on a 512x512
fluorescence image, is cut into tiles and its two classes (nucleus,
background) are mapped into each dataset's own label space (``fg_label`` /
``bg_label``), so that the stock mmseg dataset classes, class counts and
metrics run unchanged:

====================  ================================  ====================
builder               layout                            default labels
====================  ================================  ====================
:func:`build_voc12`   ``VOCdevkit/VOC2012/JPEGImages``,  bg 0 background,
                      ``SegmentationClass`` (palette),   fg 15 person
                      ``SegmentationClassAug``, ``Image
                      Sets/Segmentation/{train,val,aug,
                      trainaug}.txt``
:func:`build_cityscapes`  ``cityscapes/leftImg8bit/{train,  bg 0 road,
                      val}/<city>/*_leftImg8bit.png``,   fg 11 person
                      ``gtFine/.../*_gtFine_labelTrain
                      Ids.png``                          (train ids)
:func:`build_ade20k`  ``ade/ADEChallengeData2016/images  bg 1 wall,
                      /{training,validation}/*.jpg``,    fg 13 person
                      ``annotations/.../*.png``          (0 = other, ignored)
====================  ================================  ====================
"""
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

from .sources import load_stardist_nuclei
from .tiling import resize_image, resize_labels, split_indices, tile_grid


@dataclass
class SegmentationLayout:
    """What a segmentation builder wrote.

    Attributes:
        data_root (str): mmseg's ``data_root`` for the dataset.
        splits (dict[str, list[str]]): split name -> image ids.
        label_values (tuple[int]): the label values used (bg, fg).
    """
    data_root: str
    splits: Dict[str, List[str]] = field(default_factory=dict)
    label_values: Tuple[int, ...] = ()


def nuclei_semantic_tiles(tile_size: int = 128,
                          out_size: Optional[int] = None,
                          val_fraction: float = 0.25,
                          seed: int = 0,
                          cache_dir: Optional[str] = None
                          ) -> Dict[str, List[Tuple[str, np.ndarray,
                                                    np.ndarray]]]:
    """Tiles of the nuclei image with a binary nucleus mask, split.

    Args:
        tile_size (int): tile side in source pixels. Defaults to 128.
        out_size (int, optional): resized tile side. Defaults to None.
        val_fraction (float): share of tiles for validation.
            Defaults to 0.25.
        seed (int): split seed. Defaults to 0.
        cache_dir (str, optional): the data cache root. Defaults to None.

    Returns:
        dict: ``'train'`` / ``'val'`` -> list of ``(name, RGB uint8 tile,
        bool (h, w) nucleus mask)``.
    """
    image, instances = load_stardist_nuclei(cache_dir)
    tiles = []
    for (x0, y0, x1, y1) in tile_grid(*instances.shape, tile_size):
        img, fg = image[y0:y1, x0:x1], instances[y0:y1, x0:x1] > 0
        if out_size:
            size = (out_size, out_size)
            img = resize_image(img, size)
            fg = resize_labels(fg.astype(np.uint8), size) > 0
        tiles.append((f'nuclei_x{x0}_y{y0}', img, fg))
    train, val = split_indices(len(tiles), val_fraction, seed)
    return {'train': [tiles[i] for i in train],
            'val': [tiles[i] for i in val]}


def _labels(fg: np.ndarray, bg_label: int, fg_label: int) -> np.ndarray:
    for v in (bg_label, fg_label):
        if not 0 <= v <= 255:
            raise ValueError(f'labels must fit in uint8, got {v}')
    return np.where(fg, fg_label, bg_label).astype(np.uint8)


def _write(path: str, img: np.ndarray, params=()) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    if not cv2.imwrite(path, img, list(params)):
        raise OSError(f'could not write {path}')


def _write_tile(path: str, rgb: np.ndarray) -> None:
    """Write an RGB tile as the dataset's image (BGR for OpenCV; a ``.jpg``
    at JPEG quality 95, anything else lossless)."""
    params = (cv2.IMWRITE_JPEG_QUALITY, 95) if path.endswith('.jpg') else ()
    _write(path, rgb[..., ::-1], params)


def voc_palette() -> np.ndarray:
    """Pascal VOC's 256-colour palette (bit-interleaved label colours)."""
    palette = np.zeros((256, 3), np.uint8)
    for label in range(256):
        c, r, g, b = label, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette[label] = (r, g, b)
    return palette


def _write_palette_png(path: str, labels: np.ndarray) -> None:
    from PIL import Image
    os.makedirs(osp.dirname(path), exist_ok=True)
    img = Image.fromarray(labels, mode='P')
    img.putpalette(voc_palette().ravel().tolist())
    img.save(path)


def build_voc12(out_dir: str, tile_size: int = 128,
                out_size: Optional[int] = None, fg_label: int = 15,
                bg_label: int = 0, aug_fraction: float = 0.5,
                val_fraction: float = 0.25, seed: int = 0,
                cache_dir: Optional[str] = None) -> SegmentationLayout:
    """Write a VOC2012 + SBD-aug segmentation layout.

    As in the real set, the training tiles are split into ``train.txt``
    (labels in ``SegmentationClass``, palette PNGs) and ``aug.txt`` (labels
    only in ``SegmentationClassAug``, grey PNGs); ``SegmentationClassAug``
    holds both (``trainaug.txt``), and ``val.txt`` lives in
    ``SegmentationClass``.

    Args:
        out_dir (str): where ``VOCdevkit/`` goes.
        tile_size (int): tile side in source pixels. Defaults to 128.
        out_size (int, optional): resized tile side. Defaults to None.
        fg_label (int): VOC class of the nuclei. Defaults to 15 (person).
        bg_label (int): VOC class of the rest. Defaults to 0 (background).
        aug_fraction (float): share of training tiles that are aug-only.
            Defaults to 0.5.
        val_fraction (float): share of tiles in ``val.txt``.
            Defaults to 0.25.
        seed (int): split seed. Defaults to 0.
        cache_dir (str, optional): the data cache root. Defaults to None.

    Returns:
        SegmentationLayout: ``data_root`` is ``VOCdevkit/VOC2012``.
    """
    parts = nuclei_semantic_tiles(tile_size, out_size, val_fraction, seed,
                                  cache_dir)
    root = osp.join(out_dir, 'VOCdevkit', 'VOC2012')
    train, aug = split_indices(len(parts['train']), aug_fraction, seed + 1)
    splits = {'train': [parts['train'][i] for i in train],
              'aug': [parts['train'][i] for i in aug], 'val': parts['val']}
    splits['trainaug'] = splits['train'] + splits['aug']
    for name, img, fg in parts['train'] + parts['val']:
        labels = _labels(fg, bg_label, fg_label)
        _write_tile(osp.join(root, 'JPEGImages', f'{name}.jpg'), img)
        if any(t[0] == name for t in splits['train'] + splits['val']):
            _write_palette_png(
                osp.join(root, 'SegmentationClass', f'{name}.png'), labels)
        if any(t[0] == name for t in splits['trainaug']):
            _write(osp.join(root, 'SegmentationClassAug', f'{name}.png'),
                   labels)
    layout = SegmentationLayout(root, label_values=(bg_label, fg_label))
    os.makedirs(osp.join(root, 'ImageSets', 'Segmentation'), exist_ok=True)
    for split, tiles in splits.items():
        with open(osp.join(root, 'ImageSets', 'Segmentation',
                           f'{split}.txt'), 'w') as f:
            f.writelines(f'{t[0]}\n' for t in tiles)
        layout.splits[split] = [t[0] for t in tiles]
    return layout


def build_cityscapes(out_dir: str, tile_size: int = 128,
                     out_size: Optional[int] = None, fg_label: int = 11,
                     bg_label: int = 0, city: str = 'stardist',
                     val_fraction: float = 0.25, seed: int = 0,
                     cache_dir: Optional[str] = None) -> SegmentationLayout:
    """Write a Cityscapes fine-annotation layout (train ids).

    Files are ``leftImg8bit/<split>/<city>/<city>_<seq>_<frame>
    _leftImg8bit.png`` and ``gtFine/<split>/<city>/..._gtFine_labelTrainIds
    .png`` (what mmseg's ``CityscapesDataset`` reads; mmseg's converter
    makes the latter from the polygons, which this layout does not need).

    Args:
        out_dir (str): where ``cityscapes/`` goes.
        tile_size (int): tile side in source pixels. Defaults to 128.
        out_size (int, optional): resized tile side. Defaults to None.
        fg_label (int): train id of the nuclei. Defaults to 11 (person).
        bg_label (int): train id of the rest. Defaults to 0 (road).
        city (str): the city folder name. Defaults to ``'stardist'``.
        val_fraction (float): share of tiles in ``val``. Defaults to 0.25.
        seed (int): split seed. Defaults to 0.
        cache_dir (str, optional): the data cache root. Defaults to None.

    Returns:
        SegmentationLayout: ``data_root`` is ``cityscapes/``.
    """
    parts = nuclei_semantic_tiles(tile_size, out_size, val_fraction, seed,
                                  cache_dir)
    root = osp.join(out_dir, 'cityscapes')
    layout = SegmentationLayout(root, label_values=(bg_label, fg_label))
    for seq, (split, tiles) in enumerate(parts.items()):
        ids = []
        for frame, (_, img, fg) in enumerate(tiles):
            stem = f'{city}_{seq:06d}_{frame:06d}'
            _write_tile(osp.join(root, 'leftImg8bit', split, city,
                                 f'{stem}_leftImg8bit.png'), img)
            _write(osp.join(root, 'gtFine', split, city,
                            f'{stem}_gtFine_labelTrainIds.png'),
                   _labels(fg, bg_label, fg_label))
            ids.append(f'{city}/{stem}')
        with open(osp.join(root, f'{split}.txt'), 'w') as f:
            f.writelines(f'{i}\n' for i in ids)
        layout.splits[split] = ids
    return layout


def build_ade20k(out_dir: str, tile_size: int = 128,
                 out_size: Optional[int] = None, fg_label: int = 13,
                 bg_label: int = 1, val_fraction: float = 0.25,
                 seed: int = 0, cache_dir: Optional[str] = None
                 ) -> SegmentationLayout:
    """Write an ADEChallengeData2016 layout.

    Annotation PNGs hold ADE's raw values: 0 is "other" (ignored, mmseg
    uses ``reduce_zero_label=True``) and 1..150 the classes.

    Args:
        out_dir (str): where ``ade/ADEChallengeData2016/`` goes.
        tile_size (int): tile side in source pixels. Defaults to 128.
        out_size (int, optional): resized tile side. Defaults to None.
        fg_label (int): raw ADE value of the nuclei. Defaults to 13 (person).
        bg_label (int): raw ADE value of the rest. Defaults to 1 (wall).
        val_fraction (float): share of tiles in ``validation``.
            Defaults to 0.25.
        seed (int): split seed. Defaults to 0.
        cache_dir (str, optional): the data cache root. Defaults to None.

    Returns:
        SegmentationLayout: ``data_root`` is ``ade/ADEChallengeData2016``.
    """
    parts = nuclei_semantic_tiles(tile_size, out_size, val_fraction, seed,
                                  cache_dir)
    root = osp.join(out_dir, 'ade', 'ADEChallengeData2016')
    layout = SegmentationLayout(root, label_values=(bg_label, fg_label))
    for split, folder, tag in (('train', 'training', 'train'),
                               ('val', 'validation', 'val')):
        ids = []
        for i, (_, img, fg) in enumerate(parts[split], start=1):
            stem = f'ADE_{tag}_{i:08d}'
            _write_tile(osp.join(root, 'images', folder, f'{stem}.jpg'), img)
            _write(osp.join(root, 'annotations', folder, f'{stem}.png'),
                   _labels(fg, bg_label, fg_label))
            ids.append(stem)
        layout.splits[folder] = ids
    return layout
