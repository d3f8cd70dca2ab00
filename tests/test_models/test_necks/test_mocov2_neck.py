# Copyright (c) densecl_plugin contributors. All rights reserved.
"""MoCoV2Neck: checkpoint layout and numerics."""
import pytest
import torch

from densecl_plugin.models.necks import MoCoV2Neck


def test_matches_reference_and_layout():
    torch.manual_seed(0)
    neck = MoCoV2Neck(16, 32, 8)
    assert sorted(neck.state_dict()) == [
        'mlp.0.bias', 'mlp.0.weight', 'mlp.2.bias', 'mlp.2.weight']
    x = torch.randn(3, 16, 5, 4)
    out, = neck((x, ))
    h = torch.einsum('nc,hc->nh', x.mean(dim=(2, 3)), neck.mlp[0].weight)
    h = (h + neck.mlp[0].bias).clamp(min=0)
    ref = torch.einsum('nh,dh->nd', h, neck.mlp[2].weight) + neck.mlp[2].bias
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match='in_channels=16'):
        neck((torch.randn(1, 8, 2, 2), ))
