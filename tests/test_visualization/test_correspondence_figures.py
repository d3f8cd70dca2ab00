# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The correspondence figures: what is drawn red is what the geometry says is
wrong, on real photo crops with known-perfect and shuffled features."""
import cv2
import numpy as np
import pytest
import torch
from position_codes import position_codes

from densecl_plugin.models.utils.correspondence import match_views
from densecl_plugin.visualization.correspondence_figures import (
    cell_centres_px, default_cells, draw_matches, draw_similarity_maps,
    overlap_in_view, save_png, to_rgb_image)

VIEW = 64  # view side in pixels
S = 4  # grid


def _red_pixels(rgb):
    r, g, b = (rgb[..., i].astype(int) for i in range(3))
    return int(((r > 200) & (g < 60) & (b < 60)).sum())


@pytest.fixture(scope='module')
def pair(real_image_paths):
    """Two grey crops of a real photo (grey: no pure red in the views)."""
    img = cv2.imread(real_image_paths[0], cv2.IMREAD_GRAYSCALE)
    q_box, k_box = (20., 30., 140., 150.), (60., 50., 220., 210.)
    views = []
    for (x1, y1, x2, y2), flip in ((q_box, False), (k_box, True)):
        view = cv2.resize(img[int(y1):int(y2), int(x1):int(x2)], (VIEW, VIEW))
        views.append(to_rgb_image(view[:, ::-1] if flip else view))
    geom = dict(q_bbox=torch.tensor([q_box]), q_flip=torch.tensor([False]),
                k_bbox=torch.tensor([k_box]), k_flip=torch.tensor([True]))
    return views, geom


def _matches(geom, shuffle=False):
    q_b = position_codes(geom['q_bbox'], geom['q_flip'], S)
    k_b = position_codes(geom['k_bbox'], geom['k_flip'], S)
    if shuffle:
        perm = torch.randperm(S * S, generator=torch.Generator().manual_seed(0))
        k_b = k_b.flatten(2)[..., perm].view_as(k_b)
    return match_views(q_b, k_b, **geom)


def test_matches_figure_red_only_for_wrong_matches(pair):
    (q_img, k_img), geom = pair
    q_geom = (geom['q_bbox'][0].tolist(), False)
    k_geom = (geom['k_bbox'][0].tolist(), True)
    good = _matches(geom)
    # position codes of overlapping crops are all very similar: keep all mutual
    assert int(good.kept(0.5).sum()) > 3
    assert bool(good.correct[good.kept(0.5) & good.valid].all())
    # mutual matches of cells outside the overlap are wrong by definition;
    # the threshold keeps only overlapping ones here
    thr = float(good.score[~good.valid].max()) if bool((~good.valid).any()) else 0.5
    kept = good.kept(thr)
    assert int(kept.sum()) > 0 and bool(good.correct[kept].all())
    fig = draw_matches(q_img, k_img, good, q_geom, k_geom, threshold=thr)
    assert fig.dtype == np.uint8 and fig.ndim == 3 and fig.shape[2] == 3
    assert _red_pixels(fig) == 0

    bad = _matches(geom, shuffle=True)
    assert int((bad.kept(0.5) & ~bad.correct).sum()) > 0
    fig_bad = draw_matches(q_img, k_img, bad, q_geom, k_geom, threshold=0.5)
    assert _red_pixels(fig_bad) > 50


def test_similarity_maps(pair, tmp_path):
    (q_img, k_img), geom = pair
    m = _matches(geom)
    cells = default_cells(m, num=2)
    assert len(cells) == 2 and all(bool(m.valid[0, c]) for c in cells)
    fig = draw_similarity_maps(q_img, k_img, m, cells)
    assert fig.shape[0] > 2 * VIEW and fig.shape[2] == 3
    path = save_png(fig, str(tmp_path / 'sub' / 'sim.png'))
    back = cv2.imread(path)
    assert back.shape[:2] == fig.shape[:2]
    with pytest.raises(ValueError, match=r'in \[0, 16\)'):
        draw_similarity_maps(q_img, k_img, m, [16])
    # no overlap: default to the centre cell
    far = dict(geom, k_bbox=torch.tensor([[300., 300., 340., 340.]]))
    m_far = match_views(position_codes(far['q_bbox'], far['q_flip'], S),
                        position_codes(far['k_bbox'], far['k_flip'], S), **far)
    assert default_cells(m_far) == [2 * S + 2]
    assert draw_similarity_maps(q_img, k_img, m_far, [0]).ndim == 3


def test_overlap_in_view_by_hand():
    # image overlap x in [32, 64): the right half of the query view ...
    assert overlap_in_view((0, 0, 64, 64), False, (32, 0, 96, 64), 32, 32) == (16, 0, 32, 32)
    # ... the left half once flipped, and the left half of the key view
    assert overlap_in_view((0, 0, 64, 64), True, (32, 0, 96, 64), 32, 32) == (0, 0, 16, 32)
    assert overlap_in_view((32, 0, 96, 64), False, (0, 0, 64, 64), 32, 32) == (0, 0, 16, 32)
    assert overlap_in_view((0, 0, 64, 64), False, (64, 0, 96, 64), 32, 32) is None


def test_cell_centres_and_rgb_conversion():
    assert cell_centres_px((2, 3), 64, 96).tolist() == [
        [16, 16], [48, 16], [80, 16], [16, 48], [48, 48], [80, 48]]
    bgr = torch.zeros(3, 2, 2, dtype=torch.uint8)
    bgr[0] = 255  # blue in BGR
    assert to_rgb_image(bgr)[0, 0].tolist() == [0, 0, 255]
    assert to_rgb_image(bgr, bgr=False)[0, 0].tolist() == [255, 0, 0]
    with pytest.raises(ValueError, match=r'\(3, H, W\)'):
        to_rgb_image(np.zeros((4, 4, 4)))
