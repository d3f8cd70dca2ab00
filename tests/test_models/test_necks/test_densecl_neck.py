# Copyright (c) densecl_plugin contributors. All rights reserved.
"""DenseCLNeck: checkpoint layout, shapes, numerics, num_grid, errors."""
import pytest
import torch
import torch.nn.functional as F

from densecl_plugin.models.necks import DenseCLNeck


def reference_neck(neck, x, num_grid):
    """The neck written out with einsum over its own weights."""
    W1, b1 = neck.mlp[0].weight, neck.mlp[0].bias
    W2, b2 = neck.mlp[2].weight, neck.mlp[2].bias
    g = x.mean(dim=(2, 3))  # NxC
    avgpooled_x = torch.einsum('nc,hc->nh', g, W1) + b1
    avgpooled_x = torch.einsum('nh,dh->nd', avgpooled_x.clamp(min=0), W2) + b2
    if num_grid is not None:
        x = F.adaptive_avg_pool2d(x, num_grid)
    C1, C2 = neck.mlp2[0].weight[:, :, 0, 0], neck.mlp2[2].weight[:, :, 0, 0]
    h = torch.einsum('ncs,hc->nhs', x.flatten(2), C1) + neck.mlp2[0].bias[:, None]
    dense = torch.einsum('nhs,dh->nds', h.clamp(min=0), C2) \
        + neck.mlp2[2].bias[:, None]  # NxDxS^2
    return avgpooled_x, dense, dense.mean(dim=2)


@pytest.mark.parametrize('num_grid,hw,S2', [(None, (7, 7), 49), (3, (7, 7), 9),
                                            (None, (4, 6), 24), (2, (5, 5), 4)])
def test_outputs_match_reference(num_grid, hw, S2):
    torch.manual_seed(0)
    neck = DenseCLNeck(16, 32, 8, num_grid=num_grid)
    x = torch.randn(3, 16, *hw)
    out = neck((x, ))
    ref = reference_neck(neck, x, num_grid)
    assert [tuple(o.shape) for o in out] == [(3, 8), (3, 8, S2), (3, 8)]
    for o, r in zip(out, ref):
        torch.testing.assert_close(o, r, rtol=1e-5, atol=1e-5)
    # a bare tensor and a multi-level tuple use the last map
    torch.testing.assert_close(neck(x)[1], out[1])
    torch.testing.assert_close(neck((torch.randn(3, 4, 9, 9), x))[0], out[0])


def test_checkpoint_layout_is_mmpretrain_and_has_no_bn():
    neck = DenseCLNeck(2048, 2048, 128, num_grid=None)
    assert sorted(neck.state_dict()) == sorted([
        'mlp.0.weight', 'mlp.0.bias', 'mlp.2.weight', 'mlp.2.bias',
        'mlp2.0.weight', 'mlp2.0.bias', 'mlp2.2.weight', 'mlp2.2.bias'])
    assert neck.mlp2[0].weight.shape == (2048, 2048, 1, 1)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                   for m in neck.modules())


@pytest.mark.parametrize('num_grid', [0, -3, 2.5, True, '3'])
def test_bad_num_grid(num_grid):
    with pytest.raises(ValueError, match='num_grid must be None or a '
                                         'positive int'):
        DenseCLNeck(8, 8, 4, num_grid=num_grid)


def test_num_grid_larger_than_map():
    with pytest.raises(ValueError, match=r'num_grid=9 is larger .*\(7, 7\)'):
        DenseCLNeck(8, 8, 4, num_grid=9)(torch.randn(1, 8, 7, 7))


def test_wrong_in_channels_and_non_map():
    neck = DenseCLNeck(2048, 16, 4)
    with pytest.raises(ValueError, match=r'in_channels=2048.*512 channels'):
        neck((torch.randn(2, 512, 7, 7), ))
    with pytest.raises(ValueError, match=r'4-D \(N, C, H, W\).*got \(2, 2048\)'):
        neck((torch.randn(2, 2048), ))
