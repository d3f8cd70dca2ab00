# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Conversion to timm, checked with timm's own ``resnet18`` / ``resnet50``.

The converted file is loaded by timm's loader (``create_model(...,
checkpoint_path=...)``, a strict load) and timm's network computes features
of real photos that must equal our backbone's. timm imports torchvision at
module level; where the torchvision matching torch 2.13 does not import
(PyPI's 0.28.0 beside the CPU torch), ``tests/peers/timm_peer.py`` meets
those imports with the stand-in whose names raise when called, so the
network here is timm's real code.
"""
import os.path as osp
import sys

import pytest
import torch

from densecl_plugin.converters import (convert_to_timm, timm_model_name,
                                       torchvision_resnet_shapes)

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                            'peers'))
from timm_peer import import_timm  # noqa: E402

timm, STANDIN_USED = import_timm()  # a test extra: requirements/tests*.txt


@pytest.mark.parametrize('depth', [18, 34, 50, 101, 152])
def test_timm_resnet_names_are_the_layout_we_check(depth):
    """timm's own ResNet (no classifier) has exactly the keys and shapes
    that the converter checks and writes."""
    with torch.device('meta'):
        net = timm.create_model(f'resnet{depth}', num_classes=0)
    got = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert got == torchvision_resnet_shapes(depth)


@pytest.mark.parametrize('depth,ext', [(18, '.safetensors'), (50, '.pth')])
def test_timm_computes_ours_on_real_images(depth, ext, ours, tmp_path):
    our = ours(depth)
    dst = str(tmp_path / f'timm{ext}')
    sd = convert_to_timm(our.checkpoint, dst)
    assert timm_model_name(sd) == f'resnet{depth}'
    net = timm.create_model(f'resnet{depth}', num_classes=0,
                            checkpoint_path=dst).eval()  # strict load
    for k, v in net.state_dict().items():
        assert torch.equal(v, our.model.backbone.state_dict()[k]), k
    with torch.no_grad():
        c5 = net.forward_features(our.x)  # 7 real photos, 96x128
        pooled = net(our.x)  # timm's global pool, fc = Identity
    assert c5.shape == our.c5.shape == (7, 512 if depth == 18 else 2048, 3, 4)
    torch.testing.assert_close(c5, our.c5, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(pooled, our.pooled, rtol=1e-5, atol=1e-5)
    assert our.pooled.std() > 0.01  # not a degenerate comparison


def test_a_missing_tensor_fails_timms_strict_load(resnet18_sd, make_checkpoint,
                                                  tmp_path):
    """The check is strict both ways: timm itself refuses a file that lacks
    one of its tensors (here written past our checker on purpose)."""
    dst = str(tmp_path / 'r18.pth')
    sd = dict(resnet18_sd)
    sd.pop('layer3.1.bn2.weight')
    torch.save(sd, dst)
    with pytest.raises(RuntimeError, match='layer3.1.bn2.weight'):
        timm.create_model('resnet18', num_classes=0, checkpoint_path=dst)


def test_cli(resnet18_sd, run_converter):
    dst, out = run_converter('densecl_to_timm', 'openselfsup', resnet18_sd,
                             'timm.safetensors')
    assert out.startswith(f'{dst}: timm resnet18 backbone, '
                          f'{len(resnet18_sd)} tensors (no fc); load: ')
    assert f"checkpoint_path='{dst}'" in out
    net = timm.create_model('resnet18', num_classes=0, checkpoint_path=dst)
    for k, v in net.state_dict().items():
        assert torch.equal(v, resnet18_sd[k]), k


def test_rejects_a_deep_stem_backbone(resnet18_sd, make_checkpoint, tmp_path):
    sd = dict(resnet18_sd)
    sd['stem.0.weight'] = sd.pop('conv1.weight')
    src = str(tmp_path / 'v1c.pth')
    torch.save(make_checkpoint('densecl_plugin', sd), src)
    with pytest.raises(ValueError, match=r"missing \(1\): \['conv1.weight'\]"):
        convert_to_timm(src, str(tmp_path / 'out.pth'))
    assert not (tmp_path / 'out.pth').exists()


def test_the_standin_only_meets_imports():
    """Where the stand-in serves timm's torchvision imports, calling any of
    its names raises: the comparisons above ran timm's own code only."""
    import torchvision
    if not STANDIN_USED:
        pytest.skip(f'a working torchvision {torchvision.__version__} is '
                    'installed; no stand-in')
    assert torchvision.__version__ == '0.0.0+standin'
    from torchvision.ops.misc import FrozenBatchNorm2d
    with pytest.raises(RuntimeError, match='stand-in'):
        FrozenBatchNorm2d(8)
