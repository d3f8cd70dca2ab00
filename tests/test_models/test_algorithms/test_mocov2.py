# Copyright (c) densecl_plugin contributors. All rights reserved.
"""MoCo v2 against an independent reference (single process)."""
import copy

import pytest
import torch
from torch import nn

from densecl_plugin.models import MoCoV2
from tiny_models import build_tiny_model


def build_mocov2(K=6, D=16, momentum=0.9):
    model = build_tiny_model(
        'MoCoV2', depth=18, base_channels=64, hid_channels=32, feat_dim=D,
        queue_len=K, head=dict(type='ContrastiveHead', temperature=0.2),
        momentum=momentum)
    assert isinstance(model, MoCoV2)
    return model.train()


def reference_loss(encoder_q, encoder_k, im_q, im_k, queue, T):
    def unit(t):
        return t / t.norm(dim=1, keepdim=True)

    q = unit(encoder_q(im_q)[0])  # NxD
    k = unit(encoder_k(im_k)[0])  # NxD
    logits = torch.cat([torch.einsum('nc,nc->n', q, k)[:, None],
                        torch.einsum('nc,ck->nk', q, queue)], dim=1) / T
    return -torch.log_softmax(logits, dim=1)[:, 0].mean(), k


def test_two_steps_match_reference_and_ema():
    torch.manual_seed(0)
    m = 0.9
    model = build_mocov2(momentum=m)
    optim = torch.optim.SGD(model.parameters(), lr=0.5)
    im_q, im_k = torch.randn(4, 3, 64, 64), torch.randn(4, 3, 64, 64)

    def enc_q():
        return nn.Sequential(model.backbone, model.neck)

    encoder_k = copy.deepcopy(enc_q())  # step 1: copy of the query
    for step in range(2):
        queue = model.queue.clone()
        ref, k = reference_loss(copy.deepcopy(enc_q()), encoder_k, im_q, im_k,
                                queue, 0.2)
        losses = model([im_q, im_k], mode='loss')
        assert list(losses) == ['loss']
        for p, v in zip(model.encoder_k.parameters(), encoder_k.parameters()):
            torch.testing.assert_close(p, v, rtol=0, atol=1e-6)  # copy / EMA
        torch.testing.assert_close(losses['loss'], ref, rtol=1e-5, atol=1e-5)
        cols = (4 * step + torch.arange(4)) % 6  # wraps around at step 2
        torch.testing.assert_close(model.queue[:, cols], k.t().detach(),
                                   rtol=1e-5, atol=1e-5)
        optim.zero_grad()
        losses['loss'].backward()
        assert all(p.grad is None for p in model.encoder_k.parameters())
        assert all(p.grad is not None for p in enc_q().parameters())
        k_old = [p.clone() for p in model.encoder_k.parameters()]
        optim.step()
        with torch.no_grad():  # the EMA the next step must apply
            for p, ko, qn in zip(encoder_k.parameters(), k_old,
                                 enc_q().parameters()):
                p.copy_(m * ko + (1 - m) * qn)
    assert model.queue_ptr.item() == 2


def test_layout_predict_and_errors():
    model = build_mocov2()
    keys = set(model.state_dict())
    assert {'queue', 'queue_ptr', 'encoder_k.steps', 'neck.mlp.0.weight',
            'encoder_k.module.1.mlp.2.bias'} <= keys
    assert not any('queue2' in k for k in keys)
    emb = model.eval()(torch.randn(2, 3, 64, 64), mode='predict')
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(2))
    with pytest.raises(ValueError, match='list of >= 2 views'):
        model(torch.randn(2, 3, 64, 64), mode='loss')
    with pytest.raises(ValueError, match='open interval'):
        build_mocov2(momentum=1.)
