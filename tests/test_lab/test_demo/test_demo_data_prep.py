# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The demo's new data layouts: the unlabeled pool and the two-class nuclei
set (real package data; the stardist wheel comes through the data cache)."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest

from densecl_lab.data_prep.binary_segmentation import (
    NUCLEI_CLASSES, build_binary_segmentation)
from densecl_lab.data_prep.segmentation_layouts import nuclei_semantic_tiles
from densecl_lab.data_prep.unlabeled_pool import (build_unlabeled_pool,
                                                  fit_max_side, skimage_photos,
                                                  to_rgb_uint8)


def test_to_rgb_uint8():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    rgb = to_rgb_uint8(grey, 'g')
    assert rgb.shape == (3, 4, 3)
    for c in range(3):
        assert np.array_equal(rgb[..., c], grey)
    rgba = np.random.default_rng(0).integers(0, 255, (5, 6, 4), np.uint8)
    assert np.array_equal(to_rgb_uint8(rgba, 'a'), rgba[..., :3])
    with pytest.raises(ValueError, match="photo.png: expected a uint8"):
        to_rgb_uint8(grey.astype(np.float32), 'photo.png')
    with pytest.raises(ValueError, match='x: expected .* got shape'):
        to_rgb_uint8(np.zeros((2, 2, 2), np.uint8), 'x')


@pytest.mark.parametrize('shape,max_side,expected', [
    ((100, 50, 3), 200, (100, 50)),   # small enough: untouched
    ((400, 300, 3), 200, (200, 150)),
    ((301, 1000, 3), 256, (77, 256)),
])
def test_fit_max_side(shape, max_side, expected):
    img = np.zeros(shape, np.uint8)
    assert fit_max_side(img, max_side).shape[:2] == expected


def test_pool_of_photos_and_extra_images(tmp_path):
    extra = np.random.default_rng(0).integers(0, 255, (40, 30, 3), np.uint8)
    pool = build_unlabeled_pool(
        str(tmp_path), max_side=128, deepforest_images=(),
        skimage_names=('astronaut', 'camera', 'stereo_motorcycle'),
        include_other_packages=False, extra=[('noise', extra)])
    assert pool.counts == {'skimage': 4, 'extra': 1}  # stereo: 2 views
    assert pool.num_images == 5
    assert sorted(pool.files) == sorted([
        'skimage/astronaut.jpg', 'skimage/camera.jpg',
        'skimage/stereo_motorcycle_left.jpg',
        'skimage/stereo_motorcycle_right.jpg', 'extra/noise.jpg'])
    photos = dict(skimage_photos(('astronaut', )))
    for rel in pool.files:
        img = cv2.imread(osp.join(str(tmp_path), rel))
        assert img is not None and max(img.shape[:2]) <= 128
    # the astronaut is the real photo, downscaled (JPEG at quality 95)
    ref = cv2.resize(photos['astronaut'], (128, 128),
                     interpolation=cv2.INTER_AREA)
    got = cv2.imread(osp.join(str(tmp_path), 'skimage/astronaut.jpg'))[
        ..., ::-1]
    mse = np.mean((got.astype(float) - ref.astype(float)) ** 2)
    assert 10 * np.log10(255 ** 2 / mse) > 30  # PSNR in dB
    with pytest.raises(ValueError, match='pool is empty'):
        build_unlabeled_pool(str(tmp_path / 'e'), deepforest_images=(),
                             skimage_names=(), include_other_packages=False)


def test_binary_nuclei_layout_is_the_stardist_mask(tmp_path):
    layout = build_binary_segmentation(str(tmp_path), tile_size=128,
                                       val_fraction=0.25, seed=0)
    assert layout.classes == NUCLEI_CLASSES
    tiles = nuclei_semantic_tiles(128, None, 0.25, 0)
    assert layout.splits == {k: [t[0] for t in v] for k, v in tiles.items()}
    assert len(layout.splits['train']) == 12
    assert len(layout.splits['val']) == 4
    for split, items in tiles.items():
        fg_total = pixels = 0
        for name, img, fg in items:
            got = cv2.imread(osp.join(str(tmp_path), 'img_dir', split,
                                      f'{name}.png'))[..., ::-1]
            assert np.array_equal(got, img)  # lossless PNG, RGB order
            ann = cv2.imread(osp.join(str(tmp_path), 'ann_dir', split,
                                      f'{name}.png'), cv2.IMREAD_UNCHANGED)
            assert ann.dtype == np.uint8 and ann.ndim == 2
            assert set(np.unique(ann)) <= {0, 1}
            assert np.array_equal(ann == 1, fg)
            fg_total += int(fg.sum())
            pixels += fg.size
        assert layout.foreground_fraction[split] == pytest.approx(
            fg_total / pixels)
        assert 0.05 < layout.foreground_fraction[split] < 0.5
    assert sorted(os.listdir(tmp_path / 'ann_dir')) == ['train', 'val']


def test_binary_nuclei_layout_reads_in_mmseg(tmp_path):
    """mmseg's stock dataset reads it with our two classes."""
    from mmcv.transforms import LoadImageFromFile
    from mmseg.datasets import BaseSegDataset
    from mmseg.datasets.transforms import LoadAnnotations
    build_binary_segmentation(str(tmp_path), tile_size=256)
    ds = BaseSegDataset(
        data_root=str(tmp_path), metainfo=dict(classes=NUCLEI_CLASSES),
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        img_suffix='.png', seg_map_suffix='.png', reduce_zero_label=False,
        pipeline=[LoadImageFromFile(), LoadAnnotations()])
    assert len(ds) == 1  # 4 tiles of 256, one for validation
    sample = ds[0]
    assert sample['img'].shape == (256, 256, 3)
    assert set(np.unique(sample['gt_seg_map'])) == {0, 1}
