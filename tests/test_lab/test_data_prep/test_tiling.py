# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Tiling helpers against plain-loop references."""
import numpy as np
import pytest

from densecl_lab.data_prep.tiling import (crop_boxes, split_indices, tile_grid,
                                          tile_origins)


@pytest.mark.parametrize('length,tile', [(400, 200), (1249, 200), (100, 128),
                                         (512, 128), (201, 200)])
def test_tiles_cover_the_image(length, tile):
    starts = tile_origins(length, tile)
    covered = np.zeros(length, bool)
    for s in starts:
        assert 0 <= s and s + min(tile, length) <= length
        covered[s:s + tile] = True
    assert covered.all()
    assert len(starts) == max(1, -(-length // tile))  # ceil, no extra tile


def test_grid_shape():
    tiles = tile_grid(1035, 1249, 200)
    assert len(tiles) == 6 * 7
    assert all(x1 - x0 == 200 and y1 - y0 == 200 for x0, y0, x1, y1 in tiles)


def test_crop_boxes_matches_a_loop():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 300, (200, 2))
    wh = rng.uniform(1, 60, (200, 2))
    boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    window = (100, 50, 228, 178)
    got, keep = crop_boxes(boxes, window, min_visible=0.5)
    want, want_keep = [], []
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        cx1, cy1 = max(x1, window[0]), max(y1, window[1])
        cx2, cy2 = min(x2, window[2]), min(y2, window[3])
        inside = max(0, cx2 - cx1) * max(0, cy2 - cy1)
        if inside >= 0.5 * (x2 - x1) * (y2 - y1):
            want_keep.append(i)
            want.append([cx1 - window[0], cy1 - window[1], cx2 - window[0],
                         cy2 - window[1]])
    assert keep.tolist() == want_keep and len(want_keep) > 5
    np.testing.assert_allclose(got, np.array(want, np.float32), atol=1e-4)


def test_split_is_seeded_disjoint_and_non_empty():
    train, val = split_indices(10, 0.25, seed=3)
    assert sorted(train + val) == list(range(10)) and len(val) == 2
    assert (train, val) == split_indices(10, 0.25, seed=3)
    assert split_indices(2, 0.9)[0] and split_indices(2, 0.01)[1]
    with pytest.raises(ValueError, match='at least 2 tiles'):
        split_indices(1, 0.5)
