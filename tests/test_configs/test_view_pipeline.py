# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The MoCo v2 views have one definition, ``mocov2_pipeline.py``.

Every config under ``configs/`` that makes two-view samples (``MultiView``)
makes exactly the views of ``configs/_base_/datasets/mocov2_pipeline.py``,
up to ``RandomResizedCrop``'s ``size``, inside exactly its
``train_pipeline``; and no config file but that one writes the augmentation
out, so a change of augmentation stays one edit and a re-typed copy of the
pipeline (a twin that could drift) cannot come back.
"""
import copy
import functools
import glob
import os.path as osp
import re
from typing import Any, Dict, Iterator, List, Tuple

import pytest
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ONE = 'configs/_base_/datasets/mocov2_pipeline.py'
#: every pre-training config -> the crop size of its views
PRETRAIN_CROP = {
    'configs/densecl/densecl_resnet18_1xb16-coslr-640iters_folder-cpu.py': 80,
    'configs/densecl/densecl_resnet18_amp-bf16-1xb16-coslr-640iters_folder-cpu.py': 80,
    'configs/densecl/densecl_resnet50_8xb32-coslr-200e_in1k.py': 224,
    'configs/densecl/densecl_resnet50_8xb32-coslr-800e_coco.py': 224,
    'configs/densecl/densecl_resnet50_amp-8xb32-coslr-200e_in1k.py': 224,
    'configs/densecl/densecl_resnet50_amp-bf16-8xb32-coslr-200e_in1k.py': 224,
    'configs/mocov2/mocov2_resnet18_1xb16-coslr-640iters_folder-cpu.py': 80,
    'configs/mocov2/mocov2_resnet50_8xb32-coslr-200e_in1k.py': 224,
    'configs/demo/densecl_resnet18_1xb16-coslr-640iters_demo-pool.py': 80,
    'configs/demo/mocov2_resnet18_1xb16-coslr-640iters_demo-pool.py': 80,
}
#: the transforms only the one definition may name
VIEW_TYPES = ('MultiView', 'ColorJitter', 'RandomGrayscale', 'GaussianBlur',
              'PackSelfSupInputs')


def _all_configs() -> List[str]:
    return sorted(osp.relpath(p, ROOT) for p in glob.glob(
        osp.join(ROOT, 'configs', '**', '*.py'), recursive=True))


@functools.lru_cache(maxsize=None)
def _resolved(path: str) -> Dict[str, Any]:
    return Config.fromfile(osp.join(ROOT, path)).to_dict()


def _load(path: str) -> Dict[str, Any]:
    """``path`` resolved, as a plain dict (a fresh copy)."""
    return copy.deepcopy(_resolved(path))


def _pipelines(node: Any, where: str = '') -> Iterator[Tuple[str, list]]:
    """Every list anywhere in ``node`` that holds a ``MultiView`` step."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _pipelines(value, f'{where}.{key}' if where else key)
    elif isinstance(node, (list, tuple)):
        if any(isinstance(t, dict) and t.get('type') == 'MultiView'
               for t in node):
            yield where, list(node)
        for i, value in enumerate(node):
            yield from _pipelines(value, f'{where}[{i}]')


def _with_crop(size: Any) -> Tuple[list, list]:
    """The one definition's views and train_pipeline at crop ``size``."""
    one = _load(ONE)
    views = copy.deepcopy(one['view_pipeline'])
    crops = [t for t in views if t['type'] == 'RandomResizedCrop']
    assert len(crops) == 1, views
    crops[0]['size'] = size
    pipeline = [dict(t, transforms=[views]) if t['type'] == 'MultiView'
                else t for t in copy.deepcopy(one['train_pipeline'])]
    return views, pipeline


def _crop_size(pipeline: list) -> Any:
    multi = next(t for t in pipeline if t['type'] == 'MultiView')
    return next(t['size'] for views in multi['transforms'] for t in views
                if t['type'] == 'RandomResizedCrop')


def test_the_one_definition_is_the_moco_v2_recipe():
    """Pins the recipe itself (Chen et al., 2020), so that editing it is a
    deliberate change of this test too."""
    one = _load(ONE)
    assert one['crop_size'] == 224
    assert one['view_pipeline'] == [
        dict(type='RandomResizedCrop', size=224, scale=(0.2, 1.)),
        dict(type='ColorJitter', brightness=0.4, contrast=0.4,
             saturation=0.4, hue=0.1, prob=0.8),
        dict(type='RandomGrayscale', prob=0.2),
        dict(type='GaussianBlur', sigma=(0.1, 2.0), prob=0.5),
        dict(type='RandomFlip', prob=0.5),
    ]
    assert one['train_pipeline'] == [
        dict(type='LoadImageFromFile'),
        dict(type='MultiView', num_views=2,
             transforms=[one['view_pipeline']]),
        dict(type='PackSelfSupInputs', meta_keys=('img_path', 'sample_idx')),
    ]


def test_every_pretraining_config_is_listed():
    """Every config that trains a DenseCL / MoCoV2 (not a model base)."""
    found = set()
    for path in _all_configs():
        cfg = _resolved(path)
        if ('train_dataloader' in cfg and cfg.get('model', {}).get('type')
                in ('DenseCL', 'MoCoV2')):
            found.add(path)
    assert found == set(PRETRAIN_CROP)


@pytest.mark.parametrize('path', sorted(PRETRAIN_CROP))
def test_pretraining_views_are_the_one_definition(path):
    cfg = _load(path)
    size = PRETRAIN_CROP[path]
    views, pipeline = _with_crop(size)
    assert cfg['train_dataloader']['dataset']['pipeline'] == pipeline
    # the names a config (and --cfg-options) refers to agree with the loader
    assert cfg['train_pipeline'] == pipeline
    assert cfg['view_pipeline'] == views
    assert cfg['crop_size'] == size


@pytest.mark.parametrize('path', _all_configs())
def test_any_multi_view_pipeline_is_the_one_definition(path):
    """Base files included: whatever makes views, makes these views."""
    for where, pipeline in _pipelines(_load(path)):
        assert pipeline == _with_crop(_crop_size(pipeline))[1], (path, where)


def test_no_other_config_writes_the_augmentation_out():
    pattern = re.compile(r"""['"]?type['"]?\s*[=:]\s*['"]({})['"]""".format(
        '|'.join(VIEW_TYPES)))
    writers = {}
    for path in _all_configs():
        with open(osp.join(ROOT, path), encoding='utf-8') as f:
            names = set(pattern.findall(f.read()))
        if names:
            writers[path] = names
    assert writers == {ONE: set(VIEW_TYPES)}
