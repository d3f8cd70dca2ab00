# Copyright (c) densecl_plugin contributors. All rights reserved.
"""``densecl_plugin.utils.config_search`` on hand-made nested configs and on
the real pre-training configs."""
import os.path as osp

import pytest
from mmengine.config import Config

from densecl_plugin.utils.config_search import crop_size, find_by_type

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _pipeline(view):
    return [dict(type='LoadImageFromFile'),
            dict(type='MultiView', num_views=2, transforms=[view]),
            dict(type='PackSelfSupInputs')]


def test_find_by_type_walks_dicts_lists_and_tuples_in_order():
    a = dict(type='RandomResizedCrop', size=32)
    b = dict(type='mmpretrain.RandomResizedCrop', scale=48)
    cfg = dict(train=dict(pipeline=_pipeline([a, dict(type='RandomFlip')])),
               other=(dict(nested=[b]), ))
    found = find_by_type(cfg, 'RandomResizedCrop')
    assert found == [a, b] and found[0] is a  # the dicts themselves
    found[0]['size'] = 64
    assert cfg['train']['pipeline'][1]['transforms'][0][0]['size'] == 64
    assert find_by_type(cfg, 'GaussianBlur') == []
    assert find_by_type(None, 'x') == [] and find_by_type(3, 'x') == []


@pytest.mark.parametrize('view,size', [
    ([dict(type='RandomResizedCrop', size=80)], 80),
    ([dict(type='RandomResizedCrop', scale=96, crop_ratio_range=(0.2, 1.))],
     96),  # mmpretrain's spelling
    ([dict(type='RandomResizedCrop', size=(112, 96))], 96),
    ([dict(type='RandomFlip')], None),
])
def test_crop_size(view, size):
    assert crop_size(_pipeline(view)) == size


def test_crop_size_of_the_real_configs():
    for path, size in (
            ('configs/demo/densecl_resnet18_1xb16-coslr-640iters_demo-pool.py', 80),
            ('configs/densecl/densecl_resnet50_8xb32-coslr-200e_in1k.py', 224)):
        cfg = Config.fromfile(osp.join(REPO, path))
        assert crop_size(cfg.train_dataloader) == size
