# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Geometric ground-truth correspondence, feature matches and their accuracy.

Hand-computed cases pin the conventions (row-major cells, continuous pixel
coordinates, flip after crop); a plain-loop reference that tests which key
cell *rectangle* (mapped into the image) contains each query centre checks
random geometry; position-code features check the accuracy metric end to end.
"""
import random

import numpy as np
import pytest
import torch
from mmengine.structures import BaseDataElement
from position_codes import position_codes

from densecl_plugin.models.utils.correspondence import (
    cell_centers, chebyshev_distance, correspondence_accuracy,
    cosine_similarity_grid, geometric_correspondence,
    geometric_correspondence_from_samples, image_to_view, match_views,
    mutual_best_matches, view_to_image, views_geometry)


def _corr(q_box, q_flip, k_box, k_flip, grid, key_grid=None):
    """One pair -> (ind, valid) as nested lists over (rows, cols) of query."""
    ind, valid = geometric_correspondence(
        torch.tensor([q_box], dtype=torch.float64), torch.tensor([q_flip]),
        torch.tensor([k_box], dtype=torch.float64), torch.tensor([k_flip]),
        grid, key_grid)
    S_h, S_w = (grid, grid) if isinstance(grid, int) else grid
    return ind.view(S_h, S_w).tolist(), valid.view(S_h, S_w).tolist()


def test_cell_centers_row_major():
    uv = cell_centers((2, 3), dtype=torch.float64)
    ref = [[(c + 0.5) / 3, (r + 0.5) / 2] for r in range(2) for c in range(3)]
    assert torch.allclose(uv, torch.tensor(ref, dtype=torch.float64))


def test_identical_crops_give_identity():
    ind, valid = _corr((10, 20, 74, 84), False, (10, 20, 74, 84), False, 4)
    assert ind == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15]]
    assert all(all(row) for row in valid)


def test_pure_flip_mirrors_columns():
    ind, valid = _corr((0, 0, 64, 64), False, (0, 0, 64, 64), True, 4)
    assert ind == [[3, 2, 1, 0], [7, 6, 5, 4], [11, 10, 9, 8], [15, 14, 13, 12]]
    assert all(all(row) for row in valid)
    # both views flipped: the flips cancel
    ind, _ = _corr((0, 0, 64, 64), True, (0, 0, 64, 64), True, 4)
    assert ind == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15]]


def test_half_shifted_crops_overlap_on_half():
    # q covers x in [0, 64), k covers [32, 96); query centres x = 8, 24, 40, 56
    # -> key u = (x - 32) / 64 = -.375, -.125, .125, .375 -> out, out, col 0, col 1
    ind, valid = _corr((0, 0, 64, 64), False, (32, 0, 96, 64), False, 4)
    assert valid == [[False, False, True, True]] * 4
    assert [row[2:] for row in ind] == [[0, 1], [4, 5], [8, 9], [12, 13]]
    # flipped query: its columns read the image right to left, x = 56, 40, 24, 8
    ind, valid = _corr((0, 0, 64, 64), True, (32, 0, 96, 64), False, 4)
    assert valid == [[True, True, False, False]] * 4
    assert [row[:2] for row in ind] == [[1, 0], [5, 4], [9, 8], [13, 12]]
    # vertical shift: rows move instead of columns
    ind, valid = _corr((0, 0, 64, 64), False, (0, 32, 64, 96), False, 4)
    assert valid == [[False] * 4, [False] * 4, [True] * 4, [True] * 4]
    assert ind[2:] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_no_overlap_is_all_invalid():
    _, valid = _corr((0, 0, 64, 64), False, (100, 100, 164, 164), False, 4)
    assert not any(any(row) for row in valid)
    # touching at x = 64: the key crop starts where the query crop ends
    _, valid = _corr((0, 0, 64, 64), False, (64, 0, 128, 64), True, 4)
    assert not any(any(row) for row in valid)


def test_different_scales():
    # key crop twice as large: query centres x = 8, 24, 40, 56 -> u = x / 128
    # = .0625, .1875, .3125, .4375 -> key cols 0, 0, 1, 1 (rows alike)
    ind, valid = _corr((0, 0, 64, 64), False, (0, 0, 128, 128), False, 4)
    assert ind == [[0, 0, 1, 1], [0, 0, 1, 1], [4, 4, 5, 5], [4, 4, 5, 5]]
    assert all(all(row) for row in valid)
    # query crop twice as large: centres x = 16, 48, 80, 112 -> u = .25, .75,
    # 1.25, 1.75 -> cols 1, 3, out, out
    ind, valid = _corr((0, 0, 128, 128), False, (0, 0, 64, 64), False, 4)
    assert valid == [[True, True, False, False]] * 2 + [[False] * 4] * 2
    assert [row[:2] for row in ind[:2]] == [[5, 7], [13, 15]]


def test_non_square_crops_and_grids():
    # grid 2 x 3 on a 60 x 40 crop: centres x = 10, 30, 50; y = 10, 30.
    # key crop [25, 85) x [0, 40): u = -.25, .0833, .4167 -> out, col 0, col 1
    ind, valid = _corr((0, 0, 60, 40), False, (25, 0, 85, 40), False, (2, 3))
    assert valid == [[False, True, True]] * 2
    assert [row[1:] for row in ind] == [[0, 1], [3, 4]]
    # the key grid may differ from the query grid: key 4 x 2 over [0, 80) x [0, 40)
    # u = 10/80, 30/80, 50/80 -> cols 0, 0, 1; v = 10/40, 30/40 -> rows 1, 3
    ind, valid = _corr((0, 0, 60, 40), False, (0, 0, 80, 40), False, (2, 3),
                       key_grid=(4, 2))
    assert ind == [[2, 2, 3], [6, 6, 7]]
    assert all(all(row) for row in valid)


def _reference(q_box, q_flip, k_box, k_flip, S_h, S_w, Sk_h, Sk_w):
    """Plain loops: which key cell rectangle, mapped into the image, holds each
    query cell centre (mapped into the image)."""
    ind, valid = [], []
    for r in range(S_h):
        for c in range(S_w):
            fu = (c + 0.5) / S_w
            fu = 1 - fu if q_flip else fu
            x = q_box[0] + fu * (q_box[2] - q_box[0])
            y = q_box[1] + (r + 0.5) / S_h * (q_box[3] - q_box[1])
            hit = None
            kw, kh = k_box[2] - k_box[0], k_box[3] - k_box[1]
            for kr in range(Sk_h):
                for kc in range(Sk_w):
                    # the key cell's extent in image x, reversed when flipped
                    lo, hi = kc / Sk_w, (kc + 1) / Sk_w
                    if k_flip:
                        lo, hi = 1 - hi, 1 - lo
                    x_lo, x_hi = k_box[0] + lo * kw, k_box[0] + hi * kw
                    y_lo = k_box[1] + kr / Sk_h * kh
                    y_hi = k_box[1] + (kr + 1) / Sk_h * kh
                    inside_x = (x_lo < x <= x_hi) if k_flip else (x_lo <= x < x_hi)
                    if inside_x and y_lo <= y < y_hi:
                        hit = kr * Sk_w + kc
            ind.append(hit)
            valid.append(hit is not None)
    return ind, valid


@pytest.mark.parametrize('grid,key_grid', [((7, 7), None), ((3, 5), None),
                                           ((4, 4), (6, 3))])
def test_matches_loop_reference_on_random_geometry(grid, key_grid):
    rng = random.Random(0)
    N = 64
    q_box, k_box, q_flip, k_flip = [], [], [], []
    for _ in range(N):
        for boxes in (q_box, k_box):
            x1, y1 = rng.uniform(0, 200), rng.uniform(0, 150)
            boxes.append((x1, y1, x1 + rng.uniform(20, 150), y1 + rng.uniform(20, 150)))
        q_flip.append(rng.random() < 0.5)
        k_flip.append(rng.random() < 0.5)
    ind, valid = geometric_correspondence(
        torch.tensor(q_box, dtype=torch.float64), torch.tensor(q_flip),
        torch.tensor(k_box, dtype=torch.float64), torch.tensor(k_flip), grid, key_grid)
    Sk = key_grid or grid
    n_valid = 0
    for i in range(N):
        ref_ind, ref_valid = _reference(q_box[i], q_flip[i], k_box[i], k_flip[i], *grid, *Sk)
        assert valid[i].tolist() == ref_valid, i
        got = [v if ok else None for v, ok in zip(ind[i].tolist(), ref_valid)]
        assert got == ref_ind, i
        n_valid += sum(ref_valid)
    assert 0 < n_valid < N * grid[0] * grid[1]  # both outcomes exercised


def test_view_image_round_trip():
    g = torch.Generator().manual_seed(0)
    bbox = torch.tensor([[3., 5., 40., 90.], [0., 0., 10., 10.]], dtype=torch.float64)
    flip = torch.tensor([True, False])
    uv = torch.rand(2, 9, 2, generator=g, dtype=torch.float64)
    xy = view_to_image(uv, bbox, flip)
    assert torch.allclose(image_to_view(xy, bbox, flip), uv)
    # flipped view: u = 0 (left edge of the view) is the crop's right edge
    origin = torch.zeros(1, 2, dtype=torch.float64)
    assert view_to_image(origin, bbox, flip)[0, 0].tolist() == [40., 5.]


def test_from_data_samples_and_clear_errors():
    views = [dict(crop_bbox=(0, 0, 64, 64), flip=False, img_shape=(32, 32)),
             dict(crop_bbox=(32, 0, 96, 64), flip=True, img_shape=(32, 32))]
    samples = [BaseDataElement(metainfo=dict(img_path='a.jpg', views=views)),
               dict(img_path='b.jpg', views=views[::-1])]
    bbox, flip = views_geometry(samples, 1)
    assert bbox.tolist() == [[32, 0, 96, 64], [0, 0, 64, 64]]
    assert flip.tolist() == [True, False]
    ind, valid = geometric_correspondence_from_samples(samples, 4)
    ref_ind, ref_valid = geometric_correspondence(
        torch.tensor([[0., 0, 64, 64], [32., 0, 96, 64]]), torch.tensor([False, True]),
        torch.tensor([[32., 0, 96, 64], [0., 0, 64, 64]]), torch.tensor([True, False]), 4)
    assert torch.equal(ind, ref_ind) and torch.equal(valid, ref_valid)

    with pytest.raises(KeyError, match=r'data_samples\[0\] \(x.jpg\) has no "views"'):
        views_geometry([dict(img_path='x.jpg')], 0)
    with pytest.raises(IndexError, match='has 2 views, asked for view 2'):
        views_geometry(samples, 2)
    with pytest.raises(KeyError, match='no "crop_bbox"'):
        views_geometry([dict(views=[dict(flip=True)])], 0)
    with pytest.raises(ValueError, match='expected 4 numbers'):
        views_geometry([dict(views=[dict(crop_bbox=(1, 2, 3))])], 0)
    with pytest.raises(ValueError, match=r'k_bbox\[0\] = \[5.0, 0.0, 5.0, 9.0\] is empty'):
        geometric_correspondence(torch.tensor([[0., 0, 9, 9]]), torch.tensor([False]),
                                 torch.tensor([[5., 0, 5, 9]]), torch.tensor([False]), 2)
    with pytest.raises(ValueError, match='grid_size'):
        geometric_correspondence(torch.tensor([[0., 0, 9, 9]]), torch.tensor([False]),
                                 torch.tensor([[0., 0, 9, 9]]), torch.tensor([False]), 0)


def test_mutual_best_matches_hand_built():
    # 3 query cells x 3 key cells; q0 <-> k1 mutual; q1 -> k1 but k1 prefers q0;
    # q2 <-> k2 mutual
    sim = torch.tensor([[[0.1, 0.9, 0.0],
                         [0.2, 0.8, 0.3],
                         [0.0, 0.1, 0.7]]])
    ind, score, mutual = mutual_best_matches(sim)
    assert ind.tolist() == [[1, 1, 2]]
    assert score[0].tolist() == pytest.approx([0.9, 0.8, 0.7])
    assert mutual.tolist() == [[True, False, True]]


def test_cosine_similarity_grid_matches_loops():
    g = torch.Generator().manual_seed(1)
    q_b, k_b = torch.randn(2, 5, 3, 2, generator=g), torch.randn(2, 5, 6, generator=g)
    sim = cosine_similarity_grid(q_b, k_b)
    assert sim.shape == (2, 6, 6)
    qf = q_b.flatten(2)
    for n in range(2):
        for i in range(6):
            for j in range(6):
                a, b = qf[n, :, i], k_b[n, :, j]
                assert sim[n, i, j].item() == pytest.approx(
                    (a @ b / (a.norm() * b.norm())).item(), abs=1e-6)


def test_chebyshev_distance_matches_loops():
    S_h, S_w = 3, 5
    a = torch.arange(S_h * S_w).repeat_interleave(S_h * S_w)
    b = torch.arange(S_h * S_w).repeat(S_h * S_w)
    d = chebyshev_distance(a, b, (S_h, S_w)).tolist()
    ref = [max(abs(i // S_w - j // S_w), abs(i % S_w - j % S_w))
           for i, j in zip(a.tolist(), b.tolist())]
    assert d == ref


def _random_pairs(N, seed):
    g = torch.Generator().manual_seed(seed)
    xy1 = torch.rand(2, N, 2, generator=g, dtype=torch.float64) * 120
    wh = 40 + torch.rand(2, N, 2, generator=g, dtype=torch.float64) * 100
    boxes = torch.cat([xy1, xy1 + wh], dim=-1)  # (2, N, 4)
    flips = torch.rand(2, N, generator=g) < 0.5
    return boxes[0], flips[0], boxes[1], flips[1]


def test_accuracy_is_one_for_position_codes_and_drops_when_shuffled():
    S = 7
    q_box, q_flip, k_box, k_flip = _random_pairs(32, seed=2)
    gt_ind, valid = geometric_correspondence(q_box, q_flip, k_box, k_flip, S)
    assert 0.2 < valid.float().mean() < 0.95
    q_feat = position_codes(q_box, q_flip, S).flatten(2)  # (N, C, S²)
    k_feat = position_codes(k_box, k_flip, S).flatten(2)  # (N, C, S²)
    ind, _, _ = mutual_best_matches(cosine_similarity_grid(q_feat, k_feat))
    assert correspondence_accuracy(ind, gt_ind, valid, S).item() == 1.0
    # even exact: the nearest centre is the covering cell
    assert correspondence_accuracy(ind, gt_ind, valid, S, tolerance=0).item() == 1.0

    # key features shuffled over the grid: matches become near chance
    perm = torch.randperm(S * S, generator=torch.Generator().manual_seed(3))
    ind_shuf, _, _ = mutual_best_matches(cosine_similarity_grid(q_feat, k_feat[..., perm]))
    acc_shuf = correspondence_accuracy(ind_shuf, gt_ind, valid, S).item()
    assert acc_shuf < 0.5

    # cells without overlap do not count: corrupting them leaves accuracy at 1
    ind_bad = torch.where(valid, ind, (ind + 24) % (S * S))
    assert correspondence_accuracy(ind_bad, gt_ind, valid, S).item() == 1.0


def test_accuracy_counts_by_hand_and_nan_without_overlap():
    # key grid 3 x 4; truth (row 1, col 1) = 5 for every query cell; the
    # predictions are (1, 1), (0, 0), (1, 3) and (0, 3)
    gt = torch.tensor([[5, 5, 5, 5]])
    pred = torch.tensor([[5, 0, 7, 3]])
    valid = torch.tensor([[True, True, True, False]])
    # distances 0, 1, 2, (2, ignored): 2 of 3 valid correct
    assert correspondence_accuracy(pred, gt, valid, (3, 4)).item() == pytest.approx(2 / 3)
    assert correspondence_accuracy(pred, gt, valid, (3, 4), tolerance=2).item() == 1.0
    exact = correspondence_accuracy(pred, gt, valid, (3, 4), tolerance=0)
    assert exact.item() == pytest.approx(1 / 3)
    assert np.isnan(correspondence_accuracy(pred, gt, torch.zeros_like(valid), (3, 4)).item())
    with pytest.raises(ValueError, match='same shape'):
        correspondence_accuracy(pred, gt[:, :2], valid, (3, 4))


def test_position_codes_are_a_perfect_matcher_by_loops():
    """The codes' argmax equals a brute-force nearest image-space centre."""
    q_box, q_flip, k_box, k_flip = _random_pairs(4, seed=5)
    S = (3, 4)
    q_feat, k_feat = position_codes(q_box, q_flip, S), position_codes(k_box, k_flip, S)
    assert q_feat.shape == (4, 16, 3, 4)
    sim = cosine_similarity_grid(q_feat, k_feat)
    centres = cell_centers(S, dtype=torch.float64)
    q_xy, k_xy = view_to_image(centres, q_box, q_flip), view_to_image(centres, k_box, k_flip)
    for n in range(4):
        for i in range(12):
            # nearest centre in L1; on a product grid also nearest per axis
            dist = [abs(q_xy[n, i] - k_xy[n, j]).sum().item() for j in range(12)]
            best = min(range(12), key=dist.__getitem__)
            assert sim[n, i].argmax().item() == best


def test_match_views_summarises_geometry_and_features():
    q_box, q_flip, k_box, k_flip = _random_pairs(8, seed=6)
    m = match_views(position_codes(q_box, q_flip, 5), position_codes(k_box, k_flip, 5),
                    q_box, q_flip, k_box, k_flip)
    assert m.grid_size == m.key_grid_size == (5, 5) and m.sim.shape == (8, 25, 25)
    assert torch.equal(m.correct, m.valid) and m.accuracy().item() == 1.0
    kept = m.kept(-1.0)
    assert torch.equal(kept, m.mutual) and m.precision(-1.0) <= 1.0
    # position codes: every overlapping mutual match is right
    assert bool((m.correct | ~m.valid)[kept].all())
    # shuffling the key cells breaks it
    perm = torch.randperm(25, generator=torch.Generator().manual_seed(0))
    k_shuf = position_codes(k_box, k_flip, 5).flatten(2)[..., perm].view(8, -1, 5, 5)
    m2 = match_views(position_codes(q_box, q_flip, 5), k_shuf, q_box, q_flip, k_box, k_flip)
    assert m2.accuracy().item() < 0.6
    with pytest.raises(ValueError, match=r'\(N, C, H, W\)'):
        match_views(torch.zeros(1, 2, 9), torch.zeros(1, 2, 9), q_box[:1], q_flip[:1],
                    k_box[:1], k_flip[:1])
