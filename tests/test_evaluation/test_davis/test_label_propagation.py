# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Label propagation against a plain-loop reference of the protocol."""
import math

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from densecl_plugin.evaluation.davis import (context_indices,
                                             downsample_labels,
                                             propagate_labels,
                                             soft_labels_to_mask)


def reference_propagation(feats, first, topk, radius, n_context, T):
    """One query at a time, written from the protocol's description.

    Candidates of target t: every location of frame 0 (no radius limit), and
    for each of the n_context preceding frames (frame 0 again before the clip
    starts, as often as videowalk's padding repeats it) the locations at a
    Euclidean distance < radius. Scores are dot products / T; the top k are
    softmax-weighted and their labels averaged.
    """
    N, C, h, w = feats.shape
    labels = [first.clone()] + [None] * (N - 1)
    for t in range(1, N):
        out = torch.zeros_like(first)
        short = [max(0, t - n_context + i) for i in range(n_context)]
        for y in range(h):
            for x in range(w):
                q = feats[t, :, y, x]
                cands = []  # (score, label vector)
                for ky in range(h):
                    for kx in range(w):
                        cands.append((float(q @ feats[0, :, ky, kx]) / T,
                                      labels[0][:, ky, kx]))
                for s in short:
                    for ky in range(h):
                        for kx in range(w):
                            if radius is not None and math.hypot(
                                    ky - y, kx - x) >= radius:
                                continue
                            cands.append((float(q @ feats[s, :, ky, kx]) / T,
                                          labels[s][:, ky, kx]))
                cands.sort(key=lambda c: -c[0])
                top = cands[:topk]
                wts = torch.softmax(torch.tensor([c[0] for c in top]), 0)
                out[:, y, x] = sum(wt * c[1] for wt, c in zip(wts, top))
        labels[t] = out
    return torch.stack(labels)


@pytest.mark.parametrize('radius,n_context,topk', [(2, 2, 3), (1.5, 3, 5),
                                                   (None, 1, 4), (3, 0, 2)])
def test_propagation_matches_plain_loops(radius, n_context, topk):
    g = torch.Generator().manual_seed(0)
    feats = F.normalize(torch.randn(5, 8, 4, 5, generator=g), dim=1)
    first = torch.rand(3, 4, 5, generator=g)
    first = first / first.sum(0, keepdim=True)
    expected = reference_propagation(feats, first, topk, radius, n_context,
                                     0.1)
    got = propagate_labels(feats, first, topk=topk, radius=radius,
                           n_context=n_context, temperature=0.1)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    # blocks of query rows (and key bands) must not change the result
    small = propagate_labels(feats, first, topk=topk, radius=radius,
                             n_context=n_context, temperature=0.1,
                             max_elements=1)
    torch.testing.assert_close(small, expected, rtol=1e-5, atol=1e-6)


def test_context_indices_pad_with_the_first_frame():
    assert context_indices(1, 3) == [0, 0, 0]
    assert context_indices(2, 3) == [0, 0, 1]
    assert context_indices(7, 3) == [4, 5, 6]
    assert context_indices(5, 0) == []


def test_labels_down_and_up():
    mask = np.zeros((16, 24), np.uint8)
    mask[:8, :12] = 3
    soft = downsample_labels(mask, [0, 3], (2, 3))
    assert soft.shape == (2, 2, 3)
    torch.testing.assert_close(soft.sum(0), torch.ones(2, 3))
    assert soft[1, 0, 0] == 1 and soft[1, 1, 2] == 0
    back = soft_labels_to_mask(soft, [0, 3], (16, 24))
    assert back.dtype == np.uint8 and set(np.unique(back)) == {0, 3}
    assert back[0, 0] == 3 and back[-1, -1] == 0


def test_bad_arguments():
    feats = F.normalize(torch.randn(2, 4, 3, 3), dim=1)
    with pytest.raises(ValueError, match='topk'):
        propagate_labels(feats, torch.ones(1, 3, 3), topk=10)
    with pytest.raises(ValueError, match='grid'):
        propagate_labels(feats, torch.ones(1, 2, 3), topk=2)


def test_upsampling_agrees_with_cv2_resize_as_videowalk_does():
    # videowalk upsamples the soft maps with cv2.resize (bilinear) before
    # the argmax; ours runs on the device with torch: same pixel mapping
    g = torch.Generator().manual_seed(0)
    soft = torch.rand(3, 60, 107, generator=g)
    ours = soft_labels_to_mask(soft, [0, 1, 2], (480, 854))
    up = cv2.resize(soft.permute(1, 2, 0).numpy(), (854, 480),
                    interpolation=cv2.INTER_LINEAR)  # (H, W, L)
    theirs = up.argmax(-1)
    assert (ours == theirs).mean() > 0.999
