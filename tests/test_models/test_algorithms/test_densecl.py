# Copyright (c) densecl_plugin contributors. All rights reserved.
"""DenseCL against an independent reference, on real photos.

The reference below recomputes both losses from copies of the model's
query/key backbone and neck with plain einsum, an explicit per-cell argmax
loop, ``torch.cat`` logits and cross-entropy, without any shuffle. In a
single process the model's batch shuffle is a local permutation, which BN in
train mode (batch statistics) cannot see, so the two must agree.
"""
import copy

import cv2
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from densecl_plugin.models import DenseCL
from densecl_plugin.registry import MODELS
from tiny_models import tiny_backbone, tiny_model_cfg


def build_densecl(depth=18, num_grid=None, K=24, D=16, loss_lambda=0.5,
                  momentum=0.9, matching='feature', **kwargs):
    model = MODELS.build(tiny_model_cfg(
        'DenseCL', depth=depth, base_channels=64, hid_channels=32,
        feat_dim=D, queue_len=K, neck=dict(num_grid=num_grid),
        head=dict(type='ContrastiveHead', temperature=0.2),
        momentum=momentum, loss_lambda=loss_lambda, matching=matching,
        **kwargs))
    model.init_weights()
    return model.train()


def photo_views(paths, size):
    """Two views of real photos: the resized photo, and a flipped crop."""
    q, k = [], []
    for path in paths:
        img = cv2.imread(path)[..., ::-1].astype('float32')  # RGB HxWx3
        h, w = img.shape[:2]
        crop = img[h // 8:, : w - w // 6][:, ::-1]  # crop then flip
        for out, im in ((q, img), (k, crop)):
            im = cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA)
            t = torch.from_numpy(im.copy()).permute(2, 0, 1)  # 3xHxW
            out.append((t - 120.) / 60.)
    return torch.stack(q), torch.stack(k)  # Nx3xHxW each


def reference_losses(bb_q, neck_q, bb_k, neck_k, im_q, im_k, queue, queue2,
                     T, lam, num_grid, mutual=False):
    """DenseCL's two losses and keys, written out independently."""
    q_b = bb_q(im_q)[-1]  # NxCxHxW
    q, q_grid, _ = neck_q([q_b])
    k_b = bb_k(im_k)[-1]
    k, k_grid, k2 = neck_k([k_b])
    if num_grid is not None:
        q_b = F.adaptive_avg_pool2d(q_b, num_grid)
        k_b = F.adaptive_avg_pool2d(k_b, num_grid)
    q_b, k_b = q_b.flatten(2), k_b.flatten(2)  # NxCxS^2

    def unit(t):
        return t / t.norm(dim=1, keepdim=True)

    q, q_grid, q_b = unit(q), unit(q_grid), unit(q_b)
    k, k_grid, k2, k_b = unit(k), unit(k_grid), unit(k2), unit(k_b)
    N, D, S2 = q_grid.shape
    q_b, k_b = q_b.detach(), k_b.detach()  # matching carries no gradient
    ind = torch.empty(N, S2, dtype=torch.long)
    keep = torch.ones(N, S2, dtype=torch.bool)
    for n in range(N):  # explicit cell-by-cell matching
        for i in range(S2):
            sims = [float(q_b[n, :, i] @ k_b[n, :, j]) for j in range(S2)]
            ind[n, i] = max(range(S2), key=lambda j: sims[j])
            if mutual:
                back = [float(q_b[n, :, a] @ k_b[n, :, ind[n, i]])
                        for a in range(S2)]
                keep[n, i] = max(range(S2), key=lambda a: back[a]) == i

    def ce(l_pos, l_neg):
        logits = torch.cat([l_pos, l_neg], dim=1) / T
        return -torch.log_softmax(logits, dim=1)[:, 0]

    loss_single = ce(torch.einsum('nc,nc->n', q, k)[:, None],
                     torch.einsum('nc,ck->nk', q, queue)).mean()
    k_match = torch.stack([k_grid[n][:, ind[n]] for n in range(N)])
    l_pos_dense = torch.einsum('ncs,ncs->ns', q_grid, k_match).reshape(-1, 1)
    q_flat = q_grid.permute(0, 2, 1).reshape(-1, D)
    rows = ce(l_pos_dense, torch.einsum('nc,ck->nk', q_flat, queue2))
    loss_dense = rows[keep.reshape(-1)].mean()
    return dict(loss_single=(1 - lam) * loss_single,
                loss_dense=lam * loss_dense), k, k2


def _check_step(model, im_q, im_k, bb_k, neck_k, lam, num_grid, mutual):
    queue, queue2 = model.queue.clone(), model.queue2.clone()
    ptr = int(model.queue_ptr)
    bb_q, neck_q = copy.deepcopy(model.backbone), copy.deepcopy(model.neck)
    ref, k, k2 = reference_losses(bb_q, neck_q, bb_k, neck_k, im_q, im_k,
                                  queue, queue2, 0.2, lam, num_grid, mutual)
    losses = model([im_q, im_k], mode='loss')
    assert set(losses) == {'loss_single', 'loss_dense'}
    for key in losses:
        torch.testing.assert_close(losses[key], ref[key], rtol=1e-5,
                                   atol=1e-5)
    N = im_q.shape[0]
    cols = (ptr + torch.arange(N)) % model.K
    torch.testing.assert_close(model.queue[:, cols], k.t().detach(),
                               rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model.queue2[:, cols], k2.t().detach(),
                               rtol=1e-5, atol=1e-5)
    assert int(model.queue_ptr) == int(model.queue2_ptr) == (ptr + N) % model.K
    return losses


@pytest.mark.parametrize('depth,size,num_grid,lam,matching', [
    (18, 128, None, 0.5, 'feature'),
    (18, 128, 3, 0.5, 'feature'),
    (18, 96, None, 0.3, 'mutual'),
    (18, 128, 2, 1.0, 'feature'),
    (50, 64, None, 0.5, 'feature'),
])
def test_two_steps_match_reference_and_ema(real_image_paths, depth, size,
                                           num_grid, lam, matching):
    torch.manual_seed(0)
    m = 0.9
    model = build_densecl(depth, num_grid, K=6, loss_lambda=lam, momentum=m,
                          matching=matching)
    optim = torch.optim.SGD(model.parameters(), lr=0.5)
    im_q, im_k = photo_views(real_image_paths[:4], size)

    # step 1: the key encoder is the query encoder, copied on first use
    bb_k, neck_k = copy.deepcopy(model.backbone), copy.deepcopy(model.neck)
    losses = _check_step(model, im_q, im_k, bb_k, neck_k, lam, num_grid,
                         matching == 'mutual')
    optim.zero_grad()
    sum(losses.values()).backward()
    # gradients reach every query parameter (find_unused_parameters=False
    # is safe) and no key parameter
    assert all(p.grad is not None for n, p in model.named_parameters()
               if not n.startswith('encoder_k'))
    assert all(p.grad is None and not p.requires_grad
               for p in model.encoder_k.parameters())
    k_old = [p.clone() for p in model.encoder_k.parameters()]
    optim.step()

    # step 2: k <- m k + (1 - m) q, with q after the SGD step
    q_new = [p.detach().clone() for p in
             nn.Sequential(model.backbone, model.neck).parameters()]
    k_expected = [m * ko + (1 - m) * qn for ko, qn in zip(k_old, q_new)]
    ref_k = copy.deepcopy(nn.Sequential(model.backbone, model.neck))
    with torch.no_grad():
        for p, v in zip(ref_k.parameters(), k_expected):
            p.copy_(v)
    _check_step(model, im_q, im_k, ref_k[0], ref_k[1], lam, num_grid,
                matching == 'mutual')
    for p, v in zip(model.encoder_k.parameters(), k_expected):
        torch.testing.assert_close(p, v, rtol=0, atol=1e-6)
    assert int(model.encoder_k.steps) == 2


def test_checkpoint_layout_is_mmpretrain():
    keys = set(build_densecl(num_grid=3).state_dict())
    for key in ('queue', 'queue2', 'queue_ptr', 'queue2_ptr',
                'encoder_k.steps', 'backbone.conv1.weight',
                'encoder_k.module.0.conv1.weight',
                'encoder_k.module.0.layer4.1.bn2.running_var',
                'neck.mlp.0.weight', 'neck.mlp2.2.bias',
                'encoder_k.module.1.mlp2.0.weight'):
        assert key in keys, key
    assert not any(k.startswith(('encoder_q', 'head.')) for k in keys)


def test_queues_are_unit_columns_and_pointers_long():
    model = build_densecl(K=10, D=8)
    for name in ('queue', 'queue2'):
        queue = getattr(model, name)
        assert queue.shape == (8, 10)
        torch.testing.assert_close(queue.norm(dim=0), torch.ones(10))
        assert getattr(model, f'{name}_ptr').dtype == torch.long


def test_queue2_holds_pooled_then_normalised_dense_keys():
    """k2 = normalise(mean over cells of the raw dense key), not the mean of
    normalised cells; checked on the key encoder after one step."""
    torch.manual_seed(1)
    model = build_densecl(K=8)
    im = torch.randn(2, 3, 64, 64)
    model([im, im.flip(-1)], mode='loss')
    shuffle_free = model.encoder_k.module  # BN batch stats: order-free
    _, dense, _ = shuffle_free(im.flip(-1))
    pooled_then_norm = F.normalize(dense.mean(dim=2), dim=1)  # NxD
    norm_then_pooled = F.normalize(dense, dim=1).mean(dim=2)
    torch.testing.assert_close(model.queue2[:, :2], pooled_then_norm.t(),
                               rtol=1e-5, atol=1e-5)
    assert not torch.allclose(model.queue2[:, :2], norm_then_pooled.t(),
                              atol=1e-3)


def test_match_recovers_horizontal_flip():
    model = build_densecl()
    torch.manual_seed(0)
    N, C, h, w = 2, 32, 5, 7
    q_b = F.normalize(torch.randn(N, C, h, w), dim=1)
    k_b = F.normalize(q_b.flip(-1) + 0.05 * torch.randn(N, C, h, w), dim=1)
    ind, valid = model._match(q_b, k_b, None)
    r, c = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
    flipped = (r * w + (w - 1 - c)).reshape(-1)  # S^2
    assert valid is None and ind.dtype == torch.long
    assert torch.equal(ind, flipped.expand(N, -1))
    model.matching = 'mutual'
    ind, valid = model._match(q_b, k_b, None)
    assert torch.equal(ind, flipped.expand(N, -1)) and valid.all()


def test_mutual_keeps_only_mutual_pairs():
    model = build_densecl(matching='mutual')
    e = torch.eye(4)
    q_cells = torch.stack([e[0], F.normalize(e[0] + 0.5 * e[1], dim=0), e[2],
                           e[3]], dim=1)  # CxS^2: q1 also prefers k0
    k_cells = torch.stack([e[0], -e[0], e[2], e[3]], dim=1)
    ind, valid = model._match(q_cells.reshape(1, 4, 2, 2),
                              k_cells.reshape(1, 4, 2, 2), None)
    assert ind.tolist() == [[0, 0, 2, 3]]
    assert valid.tolist() == [[True, False, True, True]]


def test_modes_tensor_and_predict():
    model = build_densecl(num_grid=3).eval()
    x = torch.randn(2, 3, 128, 128)
    feats = model([x, x], mode='tensor')
    assert [tuple(f.shape) for f in feats] == [(2, 512, 4, 4)]
    dense = model(x, mode='predict')
    assert dense.shape == (2, 512, 9)
    torch.testing.assert_close(dense.norm(dim=1), torch.ones(2, 9))
    from mmengine.structures import BaseDataElement
    samples = model([x], [BaseDataElement(), BaseDataElement()],
                    mode='predict')
    torch.testing.assert_close(samples[1].dense_feat, dense[1])
    with pytest.raises(ValueError, match="invalid mode 'bogus'"):
        model(x, mode='bogus')


def test_no_wasted_work_q2_unused_and_lambda_zero_still_connected():
    """With lambda = 0 the dense branch stays in the graph (every query
    parameter gets a gradient, as DDP's find_unused_parameters=False needs)
    but leaks nothing into it: the dense head's gradients are exactly zero,
    and every other gradient is that of MoCo v2 on the same weights, keys
    and queue (the DenseCL neck's global branch is MoCo v2's neck)."""
    torch.manual_seed(0)
    model = build_densecl(loss_lambda=0.)
    moco = MODELS.build(tiny_model_cfg(
        'MoCoV2', depth=18, base_channels=64, hid_channels=32, feat_dim=16,
        queue_len=24, head=dict(type='ContrastiveHead', temperature=0.2),
        momentum=0.9)).train()
    state = model.state_dict()
    missing, unexpected = moco.load_state_dict(
        {k: v for k, v in state.items() if k in moco.state_dict()},
        strict=False)
    assert missing == [] and unexpected == []
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(2, 3, 64, 64, generator=g), torch.randn(2, 3, 64, 64,
                                                                generator=g)
    torch.manual_seed(2)  # the same key shuffle in both
    losses = model([x, y], mode='loss')
    torch.manual_seed(2)
    ref = moco([x, y], mode='loss')['loss']
    assert losses['loss_dense'].item() == 0
    torch.testing.assert_close(losses['loss_single'], ref, rtol=0, atol=0)
    sum(losses.values()).backward()  # all query params still get a grad
    ref.backward()
    query = {n: p for n, p in model.named_parameters()
             if not n.startswith('encoder_k')}
    assert all(p.grad is not None for p in query.values())
    dense = [n for n in query if n.startswith('neck.mlp2.')]
    assert len(dense) == 4
    for name in dense:  # the dense branch: connected, but nothing flows
        assert torch.count_nonzero(query[name].grad) == 0, name
    shared = dict(moco.named_parameters())
    compared = 0
    for name, p in query.items():
        if name in dense:
            continue
        torch.testing.assert_close(p.grad, shared[name].grad, rtol=1e-6,
                                   atol=1e-7, msg=lambda m: f'{name}: {m}')
        compared += 1
    assert compared == len(query) - len(dense) > 50


def test_validation_errors():
    with pytest.raises(ValueError, match=r'open interval \(0, 1\).*1\.5'):
        build_densecl(momentum=1.5)
    with pytest.raises(ValueError, match='open interval'):
        build_densecl(momentum=0.)
    with pytest.warns(UserWarning, match='inverted convention'):
        build_densecl(momentum=0.001)
    with pytest.raises(ValueError, match='num_grid must be None or a positive'):
        build_densecl(num_grid=0)
    with pytest.raises(ValueError, match='loss_lambda must be in'):
        build_densecl(loss_lambda=1.5)
    with pytest.raises(ValueError, match="matching must be one of"):
        build_densecl(matching='geometricc')
    with pytest.raises(ValueError, match='queue_len must be a positive int'):
        build_densecl(K=0)
    with pytest.raises(ValueError, match='feat_dim=16 but the neck'):
        MODELS.build(tiny_model_cfg(hid_channels=8, feat_dim=16, queue_len=4,
                                    neck=dict(out_channels=8)))
    # the neck configured for ResNet-50 on a ResNet-18
    model = DenseCL(backbone=tiny_backbone(18), queue_len=4,
                    data_preprocessor=None)
    x = torch.randn(2, 3, 64, 64)
    with pytest.raises(ValueError, match=r'in_channels=2048.*512 channels'):
        model([x, x], mode='loss')
    # a backbone without a spatial map
    model = build_densecl()
    model.backbone = nn.Sequential(nn.Conv2d(3, 512, 3),
                                   nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with pytest.raises(ValueError, match=r'4-D \(N, C, H, W\).*got \(2, 512\)'):
        model([x, x], mode='loss')
    with pytest.raises(ValueError, match='list of >= 2 views'):
        build_densecl()([x], mode='loss')


def test_registered_defaults_are_the_paper():
    cls = MODELS.get('DenseCL')
    assert cls is DenseCL
    model = DenseCL(data_preprocessor=None)
    assert (model.K, model.D, model.encoder_k.m, model.loss_lambda,
            model.head.temperature) == (65536, 128, 0.999, 0.5, 0.2)
    assert model.backbone.depth == 50 and model.backbone.out_indices == (3, )
    assert model.neck.mlp2[0].in_channels == 2048
    assert model.matching == 'feature' and model.num_grid is None
