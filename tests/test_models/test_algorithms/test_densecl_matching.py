# Copyright (c) densecl_plugin contributors. All rights reserved.
"""DenseCL's matching strategies and its correspondence accuracy, on views
with a known answer.

``'feature'`` (paper argmax), ``'mutual'`` and ``'geometric'`` (from the crop
boxes and flips in the data samples) are checked on hand-computed geometry,
on position-code features (where all three must agree), and the geometric
dense loss and ``corr_acc`` against references written out here with plain
loops over cells.
"""
import copy

import cv2
import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import BaseDataElement
from position_codes import position_codes

from densecl_plugin.registry import MODELS
from tiny_models import tiny_model_cfg


def build(matching='feature', base_channels=16, K=8, D=8, **kwargs):
    model = MODELS.build(tiny_model_cfg(
        'DenseCL', depth=18, base_channels=base_channels, hid_channels=16,
        feat_dim=D, queue_len=K,
        backbone=dict(zero_init_residual=True),  # mmdet's default, as before
        head=dict(type='ContrastiveHead', temperature=0.2), momentum=0.9,
        matching=matching, **kwargs))
    model.init_weights()
    return model.train()


def samples(*pairs):
    """Data samples whose ``views`` are ``(q_box, q_flip, k_box, k_flip)``."""
    return [BaseDataElement(metainfo=dict(img_path=f'img{i}.jpg', views=[
        dict(crop_bbox=q, flip=qf, img_shape=(64, 64)),
        dict(crop_bbox=k, flip=kf, img_shape=(64, 64))]))
        for i, (q, qf, k, kf) in enumerate(pairs)]


def loop_truth(q_box, q_flip, k_box, k_flip, S):
    """Plain loops: for each query cell, the key cell whose image rectangle
    holds the query cell centre, or None."""
    out = []
    for r in range(S):
        for c in range(S):
            u = (c + 0.5) / S
            x = q_box[0] + (1 - u if q_flip else u) * (q_box[2] - q_box[0])
            y = q_box[1] + (r + 0.5) / S * (q_box[3] - q_box[1])
            hit = None
            for kr in range(S):
                for kc in range(S):
                    lo, hi = kc / S, (kc + 1) / S
                    if k_flip:
                        lo, hi = 1 - hi, 1 - lo
                    w, h = k_box[2] - k_box[0], k_box[3] - k_box[1]
                    in_x = (k_box[0] + lo * w < x <= k_box[0] + hi * w) if k_flip \
                        else (k_box[0] + lo * w <= x < k_box[0] + hi * w)
                    if in_x and k_box[1] + kr / S * h <= y < k_box[1] + (kr + 1) / S * h:
                        hit = kr * S + kc
            out.append(hit)
    return out


def test_geometric_match_known_answer():
    model = build('geometric')
    S = 4
    # pair 0: key = query crop shifted right by half and flipped. Query
    # columns 2, 3 (x = 40, 56) are at key u = .125, .375, flipped .875,
    # .625 -> key columns 3, 2; columns 0, 1 are outside the key view.
    # pair 1: identical crops -> identity.
    ds = samples(((0, 0, 64, 64), False, (32, 0, 96, 64), True),
                 ((5, 7, 69, 71), True, (5, 7, 69, 71), True))
    feats = F.normalize(torch.randn(2, 6, S, S), dim=1)  # irrelevant here
    ind, valid = model._match(feats, feats.flip(0), ds)
    assert valid[0].view(S, S).tolist() == [[False, False, True, True]] * S
    assert ind[0].view(S, S)[:, 2:].tolist() == [[4 * r + 3, 4 * r + 2] for r in range(S)]
    assert valid[1].all() and ind[1].tolist() == list(range(16))
    # a pooled (num_grid) or non-square grid reads the grid from the maps
    ind, valid = model._match(feats[:, :, :2, :], feats[:, :, :2, :], ds)
    assert ind.shape == (2, 8) and valid[0].view(2, 4).tolist() == [[False, False, True, True]] * 2

    with pytest.raises(ValueError, match="matching='geometric'.*data_samples"):
        model._match(feats, feats, None)
    with pytest.raises(KeyError, match=r'data_samples\[0\] \(x.jpg\) has no "views"'):
        model._match(feats, feats, [BaseDataElement(metainfo=dict(img_path='x.jpg'))] * 2)


def test_three_modes_agree_on_position_code_features():
    """Features that encode image position make the paper's argmax the
    geometric truth: all modes agree where the views overlap."""
    S = 5
    g = torch.Generator().manual_seed(0)
    pairs = []
    for _ in range(6):
        x, y = torch.randint(0, 60, (2, ), generator=g).tolist()
        pairs.append(((x, y, x + 100, y + 90), bool(torch.rand(1, generator=g) < .5),
                      (x + 30, y - 20, x + 150, y + 100), bool(torch.rand(1, generator=g) < .5)))
    ds = samples(*pairs)
    box = [torch.tensor([p[i] for p in pairs], dtype=torch.float64) for i in (0, 2)]
    flip = [torch.tensor([p[i] for p in pairs]) for i in (1, 3)]
    q_b = F.normalize(position_codes(box[0], flip[0], S), dim=1).float()
    k_b = F.normalize(position_codes(box[1], flip[1], S), dim=1).float()
    model = build('geometric')
    geo_ind, geo_valid = model._match(q_b, k_b, ds)
    for n, (qb, qf, kb, kf) in enumerate(pairs):
        truth = loop_truth(qb, qf, kb, kf, S)
        assert geo_valid[n].tolist() == [t is not None for t in truth]
        assert [i if t is not None else None for i, t in zip(geo_ind[n].tolist(), truth)] == truth
    assert 0 < int(geo_valid.sum()) < geo_valid.numel()
    model.matching = 'feature'
    feat_ind, none = model._match(q_b, k_b, ds)
    assert none is None and torch.equal(feat_ind[geo_valid], geo_ind[geo_valid])
    model.matching = 'mutual'
    mut_ind, mutual = model._match(q_b, k_b, ds)
    assert torch.equal(mut_ind, feat_ind)
    for n in range(len(pairs)):  # mutual pairs are one-to-one, and exist
        kept = mut_ind[n][mutual[n]].tolist()
        assert len(kept) == len(set(kept)) > 0


def photo_pair(paths, size):
    """Real photos: the whole photo, and a crop of its right/top part,
    flipped; with their geometry records."""
    q, k, pairs = [], [], []
    for path in paths:
        img = cv2.imread(path)[..., ::-1].astype('float32')
        h, w = img.shape[:2]
        x1, y2 = w // 4, 3 * h // 4
        views = ((img, (0, 0, w, h), False), (img[:y2, x1:][:, ::-1], (x1, 0, w, y2), True))
        for out, (im, _, _) in zip((q, k), views):
            im = cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA)
            out.append((torch.from_numpy(im.copy()).permute(2, 0, 1) - 120.) / 60.)
        pairs.append((views[0][1], False, views[1][1], True))
    return torch.stack(q), torch.stack(k), pairs


def reference(model, im_q, im_k, pairs, S, T=0.2):
    """Geometric dense loss and feature-argmax accuracy, by loops (step 1:
    the key encoder is a copy of the query encoder)."""
    bb, neck = copy.deepcopy(model.backbone), copy.deepcopy(model.neck)
    q_b, k_b = bb(im_q)[-1], bb(im_k)[-1]  # NxCxSxS (train-mode BN)
    _, q_grid, _ = neck([q_b])
    _, k_grid, _ = neck([k_b])
    q_grid, k_grid = F.normalize(q_grid, dim=1), F.normalize(k_grid, dim=1)
    q_b, k_b = (F.normalize(t.detach().flatten(2), dim=1) for t in (q_b, k_b))
    rows, correct, counted = [], 0, 0
    for n, pair in enumerate(pairs):
        for i, j in enumerate(loop_truth(*pair, S)):
            if j is None:
                continue  # no overlap: not in the loss, not counted
            l_pos = q_grid[n, :, i] @ k_grid[n, :, j]
            l_neg = q_grid[n, :, i] @ model.queue2
            logits = torch.cat([l_pos[None], l_neg]) / T
            rows.append(-torch.log_softmax(logits, dim=0)[0])
            best = max(range(S * S), key=lambda a: (q_b[n, :, i] @ k_b[n, :, a]).item())
            counted += 1
            correct += max(abs(best // S - j // S), abs(best % S - j % S)) <= 1
    return torch.stack(rows).mean(), correct / counted, counted


@pytest.mark.parametrize('matching', ['geometric', 'feature'])
def test_loss_and_corr_acc_match_loop_reference(real_image_paths, matching):
    torch.manual_seed(0)
    S, size = 4, 128
    im_q, im_k, pairs = photo_pair(real_image_paths[:3], size)
    model = build(matching, log_correspondence=True)
    dense_ref, acc_ref, counted = reference(model, im_q, im_k, pairs, S)
    assert 0 < counted < 3 * S * S  # some cells are outside the key view
    losses = model([im_q, im_k], samples(*pairs), mode='loss')
    assert set(losses) == {'loss_single', 'loss_dense', 'corr_acc'}
    torch.testing.assert_close(losses['corr_acc'], torch.tensor(acc_ref))
    if matching == 'geometric':
        torch.testing.assert_close(losses['loss_dense'], 0.5 * dense_ref, rtol=1e-5, atol=1e-5)
    else:  # the paper's argmax pairs other cells: a different loss
        assert abs(losses['loss_dense'].item() - 0.5 * dense_ref.item()) > 1e-4
    # corr_acc is logged, not optimised
    total, log_vars = model.parse_losses(losses)
    torch.testing.assert_close(total, losses['loss_single'] + losses['loss_dense'])
    assert 'corr_acc' in log_vars


def test_corr_acc_off_by_default_and_absent_without_overlap():
    x = torch.randn(2, 3, 64, 64)
    assert set(build()([x, x.flip(-1)], mode='loss')) == {'loss_single', 'loss_dense'}
    far = samples(((0, 0, 64, 64), False, (100, 0, 164, 64), False),
                  ((0, 0, 64, 64), True, (0, 80, 64, 144), False))
    model = build(log_correspondence=True)
    assert 'corr_acc' not in model([x, x], far, mode='loss')
    # geometric matching without any overlap: no dense positive, loss 0
    model = build('geometric', log_correspondence=True)
    losses = model([x, x], far, mode='loss')
    assert 'corr_acc' not in losses and losses['loss_dense'].item() == 0.0
    with pytest.raises(KeyError, match='has no "views"'):
        build(log_correspondence=True)([x, x], [BaseDataElement()] * 2, mode='loss')
    with pytest.raises(TypeError, match='log_correspondence must be a bool'):
        build(log_correspondence=1)
