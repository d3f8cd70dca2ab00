# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The tiny layouts, read back by the stock mmdet / mmseg datasets and
compared with the source annotations parsed independently here."""
import os.path as osp
import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest
import tifffile

from densecl_lab import data_prep


def source_boxes(name):
    """deepforest's XML boxes, parsed here on their own."""
    root = ET.parse(osp.join(data_prep.deepforest_data_dir(),
                             f'{name}.xml')).getroot()
    return [[float(o.find('bndbox').find(t).text)
             for t in ('xmin', 'ymin', 'xmax', 'ymax')]
            for o in root.iter('object')]


def stardist_arrays():
    d = data_prep.stardist_data_dir()
    return (tifffile.imread(osp.join(d, 'img2d.tif')),
            tifffile.imread(osp.join(d, 'mask2d.tif')).astype(np.int64))


def test_voc_detection_roundtrip_through_mmdet(tmp_path):
    from mmdet.datasets import VOCDataset
    layout = data_prep.build_voc_detection(
        str(tmp_path), images=('OSBS_029', 'SOAP_061'), tile_size=200,
        val_fraction=0.25)
    assert layout.classes == ('Tree', )
    boxes = {n: source_boxes(n) for n in ('OSBS_029', 'SOAP_061')}
    n_total = 0
    for split in ('VOC2007/trainval', 'VOC2012/trainval', 'VOC2007/test'):
        year, name = split.split('/')
        ds = VOCDataset(data_root=layout.data_root,
                        ann_file=f'{year}/ImageSets/Main/{name}.txt',
                        data_prefix=dict(sub_data_root=f'{year}/'),
                        metainfo=dict(classes=('Tree', )),
                        test_mode=True, pipeline=[])
        assert len(ds) == len(layout.splits[split])
        for i in range(len(ds)):
            info = ds.get_data_info(i)
            stem = osp.basename(info['img_path'])[:-4]
            src, rest = stem.split('_x')
            x0, y0 = (int(v) for v in rest.split('_y'))
            want = []  # reference: >= 50 % of the box area in the window
            for x1, y1, x2, y2 in boxes[src]:
                cx1, cy1 = max(x1, x0), max(y1, y0)
                cx2, cy2 = min(x2, x0 + 200), min(y2, y0 + 200)
                inside = max(0, cx2 - cx1) * max(0, cy2 - cy1)
                if inside >= 0.5 * (x2 - x1) * (y2 - y1):
                    # mmdet reads VOC's 1-based corners as x1, x2 - 1
                    want.append([cx1 - x0, cy1 - y0, cx2 - x0 - 1,
                                 cy2 - y0 - 1])
            got = [ins['bbox'] for ins in info['instances']]
            np.testing.assert_allclose(sorted(got), sorted(want), atol=0.51)
            assert (info['width'], info['height']) == (200, 200)
            n_total += len(got)
    assert n_total == sum(layout.num_boxes.values()) > 50


@pytest.mark.parametrize('mask_format', ['rle', 'polygon'])
def test_coco_masks_are_the_real_nuclei(mask_format, tmp_path):
    from mmdet.datasets import CocoDataset
    from pycocotools.coco import COCO
    layout = data_prep.build_coco_instances(
        str(tmp_path), nuclei_tile=128, include_trees=mask_format == 'rle',
        tree_images=('SOAP_061', ), mask_format=mask_format)
    _, instances = stardist_arrays()
    full_area = np.bincount(instances.ravel())
    ious = []
    for split in ('train2017', 'val2017'):
        ann = osp.join(layout.data_root, 'annotations',
                       f'instances_{split}.json')
        coco = COCO(ann)
        for img in coco.dataset['images']:
            name = img['file_name'][:-4]
            anns = coco.loadAnns(coco.getAnnIds(imgIds=img['id']))
            if not name.startswith('nuclei'):
                for a in anns:  # trees: the box is the mask
                    assert a['category_id'] == 2
                    assert coco.annToMask(a).sum() > 0
                continue
            x0, y0 = (int(v) for v in name[len('nuclei_x'):].split('_y'))
            tile = instances[y0:y0 + 128, x0:x0 + 128]
            ids, counts = np.unique(tile[tile > 0], return_counts=True)
            kept = ids[counts >= 0.5 * full_area[ids]]
            assert len(anns) == len(kept)
            for a in anns:
                m = coco.annToMask(a).astype(bool)
                best = max(kept, key=lambda i: (m & (tile == i)).sum())
                ref = tile == best
                iou = (m & ref).sum() / (m | ref).sum()
                if mask_format == 'rle':
                    assert iou == 1.0  # exact
                ious.append(iou)
        ds = CocoDataset(data_root=layout.data_root,
                         ann_file=f'annotations/instances_{split}.json',
                         data_prefix=dict(img=f'{split}/'),
                         metainfo=dict(classes=layout.classes),
                         test_mode=True, pipeline=[])
        assert len(ds) == layout.num_images[split]
    assert np.mean(ious) > 0.75  # polygons through pixel centres


@pytest.mark.parametrize('name', ['voc12', 'cityscapes', 'ade20k'])
def test_segmentation_layouts_through_mmseg(name, tmp_path):
    from mmseg.datasets import (ADE20KDataset, CityscapesDataset,
                                PascalVOCDataset)
    from mmseg.datasets.transforms import LoadAnnotations
    build = getattr(data_prep, f'build_{name}')
    layout = build(str(tmp_path), tile_size=128)
    if name == 'voc12':
        ds = PascalVOCDataset(
            data_root=layout.data_root, ann_file='ImageSets/Segmentation/'
            'aug.txt', data_prefix=dict(img_path='JPEGImages',
                                         seg_map_path='SegmentationClassAug'))
        want_split = 'aug'
        mapping = {0: 0, 1: 15}
    elif name == 'cityscapes':
        ds = CityscapesDataset(data_root=layout.data_root, data_prefix=dict(
            img_path='leftImg8bit/train', seg_map_path='gtFine/train'))
        want_split = 'train'
        mapping = {0: 0, 1: 11}
    else:
        ds = ADE20KDataset(data_root=layout.data_root, data_prefix=dict(
            img_path='images/training', seg_map_path='annotations/training'))
        want_split = 'training'
        mapping = {0: 0, 1: 12}  # raw 1 / 13, minus one (reduce_zero_label)
    assert len(ds) == len(layout.splits[want_split]) > 0
    _, instances = stardist_arrays()
    fg = instances > 0
    load = LoadAnnotations(reduce_zero_label=ds.reduce_zero_label)
    tiles = data_prep.nuclei_semantic_tiles(tile_size=128)
    by_name = {t[0]: t for t in tiles['train'] + tiles['val']}
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        seg = load(dict(info, seg_fields=[]))['gt_seg_map']
        assert seg.shape == (128, 128)
        img = cv2.imread(info['img_path'])
        # find the tile: the image is the nuclei tile (lossless PNG only)
        if info['img_path'].endswith('.png'):
            match = [n for n, t in by_name.items()
                     if np.array_equal(t[1][..., ::-1], img)]
            assert len(match) == 1
        else:
            match = [n for n, t in by_name.items()
                     if np.abs(t[1][..., ::-1].astype(int) - img).mean() < 3]
        x0, y0 = (int(v) for v in match[0][len('nuclei_x'):].split('_y'))
        want = np.vectorize(mapping.get)(fg[y0:y0 + 128, x0:x0 + 128] * 1)
        np.testing.assert_array_equal(seg, want)
    if name == 'voc12':  # palette PNGs hold label indices
        from PIL import Image
        root = layout.data_root
        for n in layout.splits['val']:
            png = Image.open(osp.join(root, 'SegmentationClass', f'{n}.png'))
            assert png.mode == 'P'
            assert set(np.unique(np.array(png))) <= {0, 15}
        assert set(layout.splits['trainaug']) == set(
            layout.splits['train']) | set(layout.splits['aug'])
