# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Every pre-training config builds a model whose BatchNorm layers train.

The backbones are ``mmdet.ResNet``, whose defaults suit detection, not
pre-training (``norm_eval=True`` keeps every BN layer in eval mode under
``model.train()``). The base configs write each choice out; these tests
check the effect of each on the built modules, for every config under
``configs/densecl``, ``configs/mocov2`` and the demo's pre-training configs.
"""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from torch.nn.modules.batchnorm import _BatchNorm

from densecl_plugin.utils.auto_values import resolve_auto_values

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
CONFIGS = sorted(
    osp.relpath(p, ROOT) for pattern in (
        'configs/densecl/*.py', 'configs/mocov2/*.py',
        'configs/demo/densecl_*.py', 'configs/demo/mocov2_*.py')
    for p in glob.glob(osp.join(ROOT, pattern)))


def build(path, **model_overrides):
    from densecl_plugin.registry import MODELS
    cfg = Config.fromfile(osp.join(ROOT, path))
    cfg.merge_from_dict({f'model.{k}': v for k, v in model_overrides.items()})
    # 'auto' values as one process on the demo pool resolves them
    resolve_auto_values(cfg, world_size=1, dataset_size=405)
    model_cfg = cfg.model
    model_cfg['queue_len'] = 8  # the queues' size does not matter here
    model_cfg.pop('compile_backbone', None)
    return MODELS.build(model_cfg)


def frozen_bn(module, need_grad=True):
    return [n for n, m in module.named_modules() if isinstance(m, _BatchNorm)
            and (not m.training or need_grad and not all(
                p.requires_grad for p in m.parameters()))]


def test_configs_found():
    assert len(CONFIGS) >= 10, CONFIGS


@pytest.mark.parametrize('path', CONFIGS)
def test_every_bn_trains(path):
    model = build(path)
    model.train()
    n_bn = sum(isinstance(m, _BatchNorm) for m in model.backbone.modules())
    assert n_bn in (20, 53), n_bn  # ResNet-18 / ResNet-50
    assert frozen_bn(model.backbone) == []
    # the key encoder's own BN normalises with batch statistics too (its
    # parameters come from the EMA, not from gradients)
    assert frozen_bn(model.encoder_k.module, need_grad=False) == []
    assert model.encoder_k.module[0].norm_eval is False
    # and nothing of the query encoder is frozen
    assert all(p.requires_grad for p in model.backbone.parameters())
    assert all(p.requires_grad for p in model.neck.parameters())


@pytest.mark.parametrize('path', CONFIGS)
def test_a_frozen_bn_override_is_refused(path):
    with pytest.raises(ValueError, match='would not train under model.train'):
        build(path, **{'backbone.norm_eval': True})
    with pytest.raises(ValueError, match='would not train under model.train'):
        build(path, **{'backbone.frozen_stages': 1})


def test_frozen_bn_on_purpose_is_allowed():
    path = 'configs/densecl/densecl_resnet18_1xb16-coslr-640iters_folder-cpu.py'
    model = build(path, **{'backbone.norm_eval': True, 'allow_frozen_bn': True})
    model.train()
    assert len(frozen_bn(model.backbone)) == 20


def test_r50_base_choices_take_effect():
    """style, stem, dilations, frozen stages, zero-init, init of the R50
    pre-training base (the ImageNet config)."""
    torch.manual_seed(0)
    model = build('configs/densecl/densecl_resnet50_8xb32-coslr-200e_in1k.py')
    model.init_weights()
    bb = model.backbone
    # style='pytorch': the stride of a Bottleneck sits in its 3x3 conv
    assert bb.layer2[0].conv1.stride == (1, 1) and bb.layer2[0].conv2.stride == (2, 2)
    # deep_stem=False: the 7x7 torchvision stem
    assert bb.conv1.kernel_size == (7, 7) and not hasattr(bb, 'stem')
    # dilations 1 and strides (1, 2, 2, 2): a 224 px view gives the 7 x 7 C5
    assert all(m.dilation == (1, 1) for m in bb.modules()
               if isinstance(m, torch.nn.Conv2d))
    with torch.no_grad():
        assert bb(torch.zeros(2, 3, 224, 224))[-1].shape == (2, 2048, 7, 7)
    # zero_init_residual=False: every block's last BN starts at weight 1
    for layer in (bb.layer1, bb.layer2, bb.layer3, bb.layer4):
        for block in layer:
            assert torch.equal(block.norm3.weight, torch.ones_like(block.norm3.weight))
    # init: Kaiming normal, fan_out, for convs (std = sqrt(2 / fan_out))
    w = bb.layer3[0].conv2.weight  # 256 x 256 x 3 x 3
    fan_out = w.shape[0] * w.shape[2] * w.shape[3]
    assert abs(float(w.std()) / (2 / fan_out) ** 0.5 - 1) < 0.05
    # BN trains in the built model: one forward moves the running mean
    model.train()
    before = bb.bn1.running_mean.clone()
    bb(torch.randn(2, 3, 64, 64))
    assert not torch.equal(before, bb.bn1.running_mean)
