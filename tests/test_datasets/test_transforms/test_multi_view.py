# Copyright (c) densecl_plugin contributors. All rights reserved.
"""MultiView and PackSelfSupInputs: independent views, records, seeding."""
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmcv.transforms import LoadImageFromFile as MMCVLoadImageFromFile
from mmengine.config import Config
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import DefaultScope
from mmengine.runner import set_random_seed

from densecl_plugin.datasets import SelfSupDataSample
from densecl_plugin.datasets.transforms import (MultiView, PackSelfSupInputs,
                                                build_pipeline)
from densecl_plugin.registry import TRANSFORMS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
#: the MoCo v2 / DenseCL views (their one definition) at a test size
_ONE = Config.fromfile(
    osp.join(ROOT, 'configs/_base_/datasets/mocov2_pipeline.py')).to_dict()
VIEW = [dict(t, size=32) if t['type'] == 'RandomResizedCrop' else t
        for t in _ONE['view_pipeline']]
PIPELINE = [dict(t, transforms=[VIEW]) if t['type'] == 'MultiView' else t
            for t in _ONE['train_pipeline']]


def _reproduce(img: np.ndarray, record: dict) -> np.ndarray:
    """The view of a geometric-only pipeline, from its record, by cv2."""
    x1, y1, x2, y2 = map(int, record['crop_bbox'])
    h, w = record['img_shape']
    view = cv2.resize(img[y1:y2, x1:x2], (w, h))
    return view[:, ::-1] if record['flip'] else view


def test_registry_finds_every_transform_and_mmcv_loader():
    for name in ('MultiView', 'RandomResizedCrop', 'RandomFlip', 'ColorJitter',
                 'RandomGrayscale', 'GaussianBlur', 'PackSelfSupInputs'):
        assert TRANSFORMS.get(name).__module__.startswith(
            'densecl_plugin.datasets.transforms')
    assert TRANSFORMS.get('LoadImageFromFile') is MMCVLoadImageFromFile


def test_configs_with_our_default_scope_find_the_transforms():
    # what a Runner with default_scope='densecl_plugin' does
    with DefaultScope.overwrite_default_scope('densecl_plugin'):
        loader = MMENGINE_TRANSFORMS.build(dict(type='LoadImageFromFile'))
        multi = MMENGINE_TRANSFORMS.build(
            dict(type='MultiView', num_views=2, transforms=[VIEW]))
    assert isinstance(loader, MMCVLoadImageFromFile)
    assert isinstance(multi, MultiView) and len(multi.pipelines) == 2


def test_views_are_independent_and_each_matches_its_record(real_image_paths):
    np.random.seed(0)
    img = cv2.imread(real_image_paths[0])
    before = img.copy()
    multi = MultiView(num_views=2, transforms=[[
        dict(type='RandomResizedCrop', size=(24, 32)),
        dict(type='RandomFlip')
    ]])
    bboxes = set()
    for _ in range(10):
        out = multi(dict(img=img, ori_shape=img.shape[:2]))
        assert len(out['img']) == len(out['views']) == 2
        for view, record in zip(out['img'], out['views']):
            assert set(record) == {'crop_bbox', 'flip', 'img_shape'}
            assert record['img_shape'] == (24, 32)
            np.testing.assert_array_equal(view, _reproduce(img, record))
        bboxes.update(r['crop_bbox'] for r in out['views'])
    assert len(bboxes) == 20  # every view drew its own crop
    np.testing.assert_array_equal(img, before)  # input untouched
    assert img.flags.writeable


def test_several_pipelines_with_counts():
    np.random.seed(1)
    multi = MultiView(num_views=[1, 2], transforms=[
        [dict(type='RandomResizedCrop', size=20)],
        [dict(type='RandomResizedCrop', size=10),
         dict(type='RandomFlip', prob=1.)],
    ])
    img = np.random.randint(0, 256, (40, 50, 3), np.uint8)
    out = multi(dict(img=img))
    assert [v.shape[:2] for v in out['img']] == [(20, 20), (10, 10), (10, 10)]
    assert [r['flip'] for r in out['views']] == [False, True, True]
    assert out['ori_shape'] == (40, 50)


def test_in_place_transform_cannot_corrupt_other_views():

    def scribble(results):
        results['img'][0, 0] = 0  # writes into the shared input image
        return results

    img = np.full((8, 8, 3), 255, np.uint8)
    with pytest.raises(ValueError, match='read-only'):
        MultiView(num_views=2, transforms=[[scribble]])(dict(img=img))
    assert img.flags.writeable and (img == 255).all()


def test_view_pipeline_returning_none_gives_none():
    img = np.zeros((8, 8, 3), np.uint8)
    assert MultiView(1, [[lambda results: None]])(dict(img=img)) is None


@pytest.mark.parametrize('kwargs, error, match', [
    (dict(num_views=[1, 2], transforms=[[]]), ValueError, 'num_views'),
    (dict(num_views=0, transforms=[[]]), ValueError, 'num_views'),
    (dict(num_views=2, transforms=[]), TypeError, 'transforms'),
    (dict(num_views=2, transforms=dict(type='RandomFlip')), TypeError,
     'transforms'),
])
def test_bad_multi_view_arguments_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        MultiView(**kwargs)


def test_pack_after_multi_view(real_image_paths):
    np.random.seed(2)
    pipeline = build_pipeline(PIPELINE)
    packed = pipeline(dict(img_path=real_image_paths[2]))
    img = cv2.imread(real_image_paths[2])
    sample = packed['data_samples']
    assert isinstance(sample, SelfSupDataSample)
    assert sample.img_path == real_image_paths[2]
    assert sample.ori_shape == img.shape[:2]
    assert len(packed['inputs']) == len(sample.views) == 2
    for tensor, record in zip(packed['inputs'], sample.views):
        assert tensor.dtype == torch.uint8 and tensor.shape == (3, 32, 32)
        x1, y1, x2, y2 = record['crop_bbox']
        assert 0 <= x1 < x2 <= img.shape[1] and 0 <= y1 < y2 <= img.shape[0]
        assert isinstance(record['flip'], bool)


def test_pack_views_hold_the_view_pixels():
    np.random.seed(3)
    img = np.random.randint(0, 256, (30, 40, 3), np.uint8)
    out = MultiView(2, [[dict(type='RandomResizedCrop', size=(12, 16))]])(
        dict(img=img, img_path='x.jpg', scene='s1'))
    views = [v.copy() for v in out['img']]
    packed = PackSelfSupInputs(meta_keys=('img_path', 'scene', 'absent'))(out)
    for tensor, view in zip(packed['inputs'], views):
        np.testing.assert_array_equal(tensor.permute(1, 2, 0).numpy(), view)
    meta = packed['data_samples'].metainfo
    assert meta['scene'] == 's1' and 'absent' not in meta
    assert set(meta) == {'img_path', 'scene', 'ori_shape', 'views'}


def test_pack_single_image_is_one_whole_image_view():
    img = np.random.randint(0, 256, (6, 9, 3), np.uint8)
    packed = PackSelfSupInputs()(dict(img=img, img_path='a.png'))
    assert len(packed['inputs']) == 1
    assert packed['data_samples'].views == [
        dict(crop_bbox=(0., 0., 9., 6.), flip=False, img_shape=(6, 9))
    ]


def test_pack_rejects_views_without_records():
    with pytest.raises(ValueError, match='MultiView'):
        PackSelfSupInputs()(dict(img=[np.zeros((4, 4, 3), np.uint8)] * 2))
    with pytest.raises(KeyError, match='LoadImageFromFile'):
        PackSelfSupInputs()(dict(img_path='a.jpg'))


def _run(pipeline, path, seed):
    set_random_seed(seed)  # what MMEngine's randomness=dict(seed=...) does
    packed = pipeline(dict(img_path=path))
    return packed['inputs'], packed['data_samples'].views


def test_same_seed_same_views_other_seed_other_views(real_image_paths):
    pipeline = build_pipeline(PIPELINE)
    path = real_image_paths[3]
    inputs_a, views_a = _run(pipeline, path, seed=7)
    inputs_b, views_b = _run(pipeline, path, seed=7)
    inputs_c, views_c = _run(pipeline, path, seed=8)
    assert views_a == views_b
    for a, b in zip(inputs_a, inputs_b):
        assert torch.equal(a, b)
    assert views_a != views_c
    assert not all(torch.equal(a, c) for a, c in zip(inputs_a, inputs_c))
