# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The C4 shared head with an extra norm after res5, against a plain
reference (mmdet's ResLayer, then batch norm by formula)."""
import pytest
import torch
from torch import nn

import densecl_plugin.downstream  # noqa: F401  (registers into mmdet)
from densecl_plugin.downstream import DenseCLResLayerExtraNorm


def test_registered_in_mmdet_models():
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope
    assert MODELS.get('DenseCLResLayerExtraNorm') is DenseCLResLayerExtraNorm
    with DefaultScope.overwrite_default_scope('mmdet'):  # as mmdet configs
        head = MODELS.build(dict(type='DenseCLResLayerExtraNorm', depth=50,
                                 norm_cfg=dict(type='SyncBN')))
    assert isinstance(head.extra_norm, nn.SyncBatchNorm)
    assert head.extra_norm.num_features == 2048
    assert sorted({k.split('.')[0] for k in head.state_dict()}) == [
        'extra_norm', 'layer4']


@pytest.mark.parametrize('depth,channels', [(18, 512), (50, 2048)])
def test_forward_is_res5_then_norm(depth, channels):
    from mmdet.models.roi_heads.shared_heads import ResLayer
    torch.manual_seed(0)
    head = DenseCLResLayerExtraNorm(depth, stage=3, style='pytorch',
                                    norm_eval=False)
    ref = ResLayer(depth, stage=3, style='pytorch', norm_eval=False)
    ref.load_state_dict({k: v for k, v in head.state_dict().items()
                         if k.startswith('layer4.')})
    bn = head.extra_norm
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(0.5, 2)
        bn.bias.uniform_(-1, 1)
    head.eval()
    ref.eval()
    x = torch.randn(3, channels // 2, 14, 14)  # R x C4 x 14 x 14 RoI feats
    with torch.no_grad():
        y = ref(x)  # R x C x 7 x 7
        want = (y - bn.running_mean[:, None, None]) / torch.sqrt(
            bn.running_var[:, None, None] + bn.eps) \
            * bn.weight[:, None, None] + bn.bias[:, None, None]
        got = head(x)
    assert got.shape == (3, channels, 7, 7)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
