# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Conversion to detectron2's ResNet, checked against a detectron2-layout
ResNet written here (detectron2's module names: ``stem.conv1`` with a
``norm`` child, ``res2..res5``, ``shortcut``; ``FrozenBatchNorm2d`` has no
``num_batches_tracked``) and against MoCo's string-replace mapping."""
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from densecl_plugin.converters import (convert_to_detectron2,
                                       torchvision_to_detectron2_key)


class FrozenBatchNorm2d(nn.Module):
    """detectron2's frozen BN: four buffers, no counter."""

    def __init__(self, c):
        super().__init__()
        for name, init in (('weight', torch.ones), ('bias', torch.zeros),
                           ('running_mean', torch.zeros),
                           ('running_var', torch.ones)):
            self.register_buffer(name, init(c))


class Conv2d(nn.Conv2d):
    """detectron2's Conv2d: the norm is a child called ``norm``."""

    def __init__(self, *args, norm=None, **kwargs):
        super().__init__(*args, bias=False, **kwargs)
        self.norm = norm


class BottleneckBlock(nn.Module):

    def __init__(self, cin, cout, cb, stride):
        super().__init__()
        if cin != cout:
            self.shortcut = Conv2d(cin, cout, 1, stride=stride,
                                   norm=FrozenBatchNorm2d(cout))
        self.conv1 = Conv2d(cin, cb, 1, norm=FrozenBatchNorm2d(cb))
        self.conv2 = Conv2d(cb, cb, 3, stride=stride, padding=1,
                            norm=FrozenBatchNorm2d(cb))
        self.conv3 = Conv2d(cb, cout, 1, norm=FrozenBatchNorm2d(cout))


class D2ResNet50(nn.Module):
    """detectron2 ``build_resnet_backbone`` naming for R-50."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Module()
        self.stem.conv1 = Conv2d(3, 64, 7, stride=2, padding=3,
                                 norm=FrozenBatchNorm2d(64))
        cin = 64
        for i, n in enumerate([3, 4, 6, 3]):
            cb, cout = 64 * 2**i, 256 * 2**i
            blocks = []
            for j in range(n):
                stride = 2 if (j == 0 and i > 0) else 1
                blocks.append(BottleneckBlock(cin, cout, cb, stride))
                cin = cout
            setattr(self, f'res{i + 2}', nn.Sequential(*blocks))


def moco_key(k):
    """facebookresearch/moco ``convert-pretrain-to-detectron2.py``."""
    if 'layer' not in k:
        k = 'stem.' + k
    for t in [1, 2, 3, 4]:
        k = k.replace(f'layer{t}', f'res{t + 1}')
    for t in [1, 2, 3]:
        k = k.replace(f'bn{t}', f'conv{t}.norm')
    k = k.replace('downsample.0', 'shortcut')
    return k.replace('downsample.1', 'shortcut.norm')


@pytest.mark.parametrize('key,want', [
    ('conv1.weight', 'stem.conv1.weight'),
    ('bn1.running_var', 'stem.conv1.norm.running_var'),
    ('layer1.0.bn2.running_mean', 'res2.0.conv2.norm.running_mean'),
    ('layer3.5.conv3.weight', 'res4.5.conv3.weight'),
    ('layer4.0.downsample.0.weight', 'res5.0.shortcut.weight'),
    ('layer4.0.downsample.1.bias', 'res5.0.shortcut.norm.bias'),
])
def test_key_mapping(key, want):
    assert torchvision_to_detectron2_key(key) == want


def test_unknown_key_is_an_error():
    with pytest.raises(KeyError, match='fc.weight'):
        torchvision_to_detectron2_key('fc.weight')


def test_roundtrip_into_detectron2_layout(resnet50_sd, make_checkpoint,
                                          tmp_path):
    src, dst = str(tmp_path / 'full.pth'), str(tmp_path / 'd2.pkl')
    torch.save(make_checkpoint('densecl_plugin', resnet50_sd), src)
    convert_to_detectron2(src, dst)
    with open(dst, 'rb') as f:
        obj = pickle.load(f)
    assert obj['matching_heuristics'] is True
    assert obj['__author__'] == 'densecl_plugin'
    model = obj['model']
    assert all(isinstance(v, np.ndarray) for v in model.values())
    # every detectron2 parameter / buffer comes from the file, nothing else
    d2 = D2ResNet50()
    d2.load_state_dict({k: torch.from_numpy(v) for k, v in model.items()},
                       strict=True)
    # values agree with MoCo's independent mapping
    for k, v in resnet50_sd.items():
        if k.endswith('num_batches_tracked'):
            continue
        np.testing.assert_array_equal(model[moco_key(k)], v.numpy())
    assert len(model) == sum(1 for k in resnet50_sd
                             if not k.endswith('num_batches_tracked'))


def test_cli_from_openselfsup(resnet50_sd, run_converter):
    dst, out = run_converter('densecl_to_detectron2', 'openselfsup_q',
                             resnet50_sd, 'd2.pkl')
    assert 'matching_heuristics=True' in out
    with open(dst, 'rb') as f:
        model = pickle.load(f)['model']
    np.testing.assert_array_equal(model['res5.2.conv3.norm.running_var'],
                                  resnet50_sd['layer4.2.bn3.running_var'])
