# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Both algorithms under bf16 autocast: float32 losses, finite gradients,
and the same values as float32 up to bf16 rounding of the features."""
import copy

import pytest
import torch

from tiny_models import build_tiny_model


@pytest.mark.parametrize('algo', ['DenseCL', 'MoCoV2'])
def test_bf16_autocast(algo):
    torch.manual_seed(0)
    model = build_tiny_model(
        algo, depth=18, base_channels=64, hid_channels=32, feat_dim=16,
        queue_len=16,
        backbone=dict(zero_init_residual=True))  # mmdet's default, as before
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
