# Copyright (c) densecl_plugin contributors. All rights reserved.
"""ResizeEdge and PackClsInputs."""
import numpy as np
import pytest
import torch

from densecl_plugin.evaluation import PackClsInputs, ResizeEdge


@pytest.mark.parametrize('edge,shape,expected', [
    ('short', (300, 400), (256, 341)),   # 256 * 400 / 300 = 341.3
    ('short', (500, 375), (341, 256)),
    ('long', (300, 400), (192, 256)),
    ('height', (500, 375), (256, 192)),  # 256 * 375 / 500 = 192
    ('width', (300, 400), (192, 256)),
    ('short', (300, 500), (256, 426)),   # 426.7 truncated, as torchvision
    ('short', (256, 300), (256, 300)),   # already there: untouched
])
def test_resize_edge(edge, shape, expected):
    img = np.random.default_rng(0).integers(0, 255, (*shape, 3), np.uint8)
    out = ResizeEdge(scale=256, edge=edge)(dict(img=img))
    assert out['img'].shape == (*expected, 3)
    assert out['img_shape'] == expected
    assert out['scale_factor'] == pytest.approx(
        (expected[1] / shape[1], expected[0] / shape[0]))
    if expected == shape:
        assert out['img'] is img


def test_resize_edge_bad_args():
    with pytest.raises(ValueError, match='edge must be one of'):
        ResizeEdge(256, edge='shortest')
    with pytest.raises(ValueError, match='positive int'):
        ResizeEdge(0)


def test_pack_cls_inputs(real_image_paths):
    import cv2
    img = cv2.imread(real_image_paths[0])
    out = PackClsInputs()(dict(img=img, gt_label=3, img_path='x.jpg',
                               ori_shape=img.shape[:2]))
    assert out['inputs'].shape == (3, *img.shape[:2])
    assert out['inputs'].dtype == torch.uint8
    assert torch.equal(out['inputs'][0], torch.from_numpy(img[..., 0]))
    sample = out['data_samples']
    assert sample.gt_label.tolist() == [3]
    assert sample.img_path == 'x.jpg'
    grey = PackClsInputs()(dict(img=img[..., 0]))
    assert grey['inputs'].shape == (1, *img.shape[:2])
    assert 'gt_label' not in grey['data_samples']
