# Copyright (c) densecl_plugin contributors. All rights reserved.
"""``DenseCLPretrained`` on real mmdet modules: what it loads, what it
refuses, and that MMEngine's init order keeps what it loaded."""
import pytest
import torch
from mmengine.model import BaseModule
from torch import nn

from densecl_plugin.converters import BackboneNotFoundError
from densecl_plugin.downstream import DenseCLPretrained
from densecl_plugin.registry import WEIGHT_INITIALIZERS


def resnet(**kwargs):
    from mmdet.models.backbones import ResNet
    return ResNet(18, **kwargs)


def random_backbone(seed=0, **kwargs):
    torch.manual_seed(seed)
    sd = resnet(**kwargs).state_dict()
    return {k: torch.randn(v.shape) if v.is_floating_point() else v + 3
            for k, v in sd.items()}


class Detector(BaseModule):
    """A backbone whose own default init would overwrite the weights, and a
    C4-style head holding ``layer4`` plus a layer pre-training lacks."""

    def __init__(self, init_cfg=None):
        super().__init__(init_cfg)
        self.backbone = resnet(num_stages=3, strides=(1, 2, 2),
                               dilations=(1, 1, 1), out_indices=(2, ))
        self.head = BaseModule(init_cfg=dict(type='Constant', val=7.,
                                             layer='Conv2d'))
        self.head.layer4 = resnet().layer4
        self.head.extra_norm = nn.BatchNorm2d(512)


@pytest.fixture
def ckpt(tmp_path):
    sd = random_backbone()
    path = str(tmp_path / 'full.pth')
    torch.save({'state_dict': {**{f'backbone.{k}': v for k, v in sd.items()},
                               'queue': torch.zeros(4, 8)}}, path)
    return path, sd


def test_registered_in_our_scope():
    assert WEIGHT_INITIALIZERS.get('DenseCLPretrained') is DenseCLPretrained


def test_model_level_init_loads_every_target(ckpt):
    path, sd = ckpt
    model = Detector(init_cfg=dict(
        type='densecl_plugin.DenseCLPretrained', checkpoint=path,
        targets=['backbone', 'head'], allow_missing=['head.extra_norm.']))
    model.init_weights()  # children's own init runs after; must not undo it
    for name, sub in (('backbone', model.backbone), ('head', model.head)):
        for k, v in sub.state_dict().items():
            if k.startswith('extra_norm.'):
                continue
            assert torch.equal(v, sd[k]), f'{name}.{k}'
    assert model.backbone.is_init and model.head.is_init


def test_init_info_logged(ckpt):
    path, _ = ckpt
    init = DenseCLPretrained(path, targets=['backbone', 'head'],
                             allow_missing=['head.extra_norm.'])
    init(Detector())
    assert sorted(init.loaded) == ['backbone', 'head']
    assert all(k.startswith('layer4.') for k in init.loaded['head'])
    assert init.unused == []


def test_missing_keys_are_an_error(ckpt):
    path, _ = ckpt
    with pytest.raises(ValueError) as err:
        DenseCLPretrained(path, targets=['backbone', 'head'])(Detector())
    assert 'head parameters missing from the file (4)' in str(err.value)
    assert 'extra_norm.weight' in str(err.value)


def test_unused_keys_are_an_error(ckpt):
    path, _ = ckpt  # the file has layer4, a 3-stage backbone does not use it
    with pytest.raises(ValueError, match=r'file keys that no target uses '
                                         r'\(\d+\): \[.layer4'):
        DenseCLPretrained(path, targets=['backbone'])(Detector())
    init = DenseCLPretrained(path, targets=['backbone'], allow_unused=True)
    init(Detector())
    assert init.unused and all(k.startswith('layer4.') for k in init.unused)


def test_shape_mismatch_is_an_error(tmp_path):
    from mmdet.models.backbones import ResNet
    path = str(tmp_path / 'r50.pth')
    torch.save({'state_dict': ResNet(50).state_dict()}, path)
    with pytest.raises(ValueError) as err:
        DenseCLPretrained(path, targets=[''])(resnet())
    assert 'shape mismatches' in str(err.value) or 'missing' in str(err.value)


def test_deep_stem_target_fails_instead_of_staying_random(ckpt):
    path, _ = ckpt  # the bug of mmseg's ResNetV1c default, made loud
    with pytest.raises(ValueError, match=r"stem\.0\.weight"):
        DenseCLPretrained(path, targets=[''], allow_unused=True)(
            resnet(deep_stem=True))


@pytest.mark.parametrize('bad,error,match', [
    (None, ValueError, r'--cfg-options model.init_cfg.checkpoint=PATH'),
    ('missing.pth', FileNotFoundError,
     r"model.init_cfg.checkpoint: checkpoint file .*missing.pth' does not"),
    ('neck_only', BackboneNotFoundError,
     r"model.init_cfg.checkpoint: checkpoint .* holds no backbone weights"),
])
def test_bad_checkpoints(bad, error, match, tmp_path):
    if bad == 'neck_only':
        bad = str(tmp_path / 'neck.pth')
        torch.save({'state_dict': {'neck.mlp.0.weight': torch.zeros(2)}}, bad)
    elif bad:
        bad = str(tmp_path / bad)
    with pytest.raises(error, match=match):
        DenseCLPretrained(bad)(Detector())


def test_unknown_target(ckpt):
    with pytest.raises(ValueError, match=r"target 'roi_head' is not a "
                                         r"sub-module of Detector"):
        DenseCLPretrained(ckpt[0], targets=['roi_head'])(Detector())
