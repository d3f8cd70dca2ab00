# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Both algorithms under bf16 autocast: float32 losses, finite gradients,
and the same values as float32 up to bf16 rounding of the features."""
import copy

import pytest
import torch

from densecl_plugin.models import DenseCL, MoCoV2

BACKBONE = dict(type='mmdet.ResNet', norm_eval=False, depth=18, out_indices=(3, ),
                norm_cfg=dict(type='BN'))


@pytest.mark.parametrize('cls,neck', [
    (DenseCL, dict(type='DenseCLNeck', in_channels=512, hid_channels=32,
                   out_channels=16)),
    (MoCoV2, dict(type='MoCoV2Neck', in_channels=512, hid_channels=32,
                  out_channels=16)),
])
def test_bf16_autocast(cls, neck):
    torch.manual_seed(0)
    model = cls(backbone=BACKBONE, neck=neck, queue_len=16, feat_dim=16,
                data_preprocessor=None)
    model.init_weights()
    twin = copy.deepcopy(model)
    x = [torch.randn(2, 3, 64, 64), torch.randn(2, 3, 64, 64)]
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = model(x, mode='loss')
    ref = twin(x, mode='loss')
    for key, loss in losses.items():
        assert loss.dtype == torch.float32 and torch.isfinite(loss)
        torch.testing.assert_close(loss, ref[key], rtol=0.1, atol=0.05)
    sum(losses.values()).backward()
    assert all(torch.isfinite(p.grad).all() for n, p in
               model.named_parameters() if not n.startswith('encoder_k'))
    assert model.queue.dtype == torch.float32
