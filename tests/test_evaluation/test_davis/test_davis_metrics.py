# Copyright (c) densecl_plugin contributors. All rights reserved.
"""J and F against values worked out by hand on small masks.

Conventions used by the hand computations (those of davis2017-evaluation):
``seg2bmap`` marks a pixel when it differs from its right, lower or
lower-right neighbour, so the boundary of a filled box rows [a, b] x cols
[c, d] (away from the image border) is the 1-pixel perimeter of the box rows
[a-1, b] x cols [c-1, d]. Images under ~125 px of diagonal get a tolerance of
ceil(0.008 * diag) = 1 px, i.e. a dilation by the 4-neighbour cross.
"""
import numpy as np
import pytest

from densecl_plugin.evaluation.davis import (db_eval_boundary, db_eval_iou,
                                             db_statistics, disk,
                                             evaluate_results,
                                             evaluate_sequence, f_measure,
                                             format_table, seg2bmap,
                                             sequence_rows, summarise)
from densecl_plugin.evaluation.davis.metrics import boundary_tolerance


def box(shape, rows, cols):
    m = np.zeros(shape, np.uint8)
    m[rows[0]:rows[1] + 1, cols[0]:cols[1] + 1] = 1
    return m


def test_seg2bmap_of_a_square_is_the_shifted_perimeter():
    seg = box((8, 8), (2, 5), (2, 5))  # 4x4 square
    expected = np.zeros((8, 8), bool)
    expected[1:6, 1:6] = True
    expected[2:5, 2:5] = False  # perimeter of rows 1..5 x cols 1..5
    assert (seg2bmap(seg) == expected).all()
    assert seg2bmap(seg).sum() == 16


def test_seg2bmap_at_the_image_border():
    # a mask touching the bottom-right corner: the last row/column only
    # compare with their right/lower neighbour, the corner is never marked
    seg = box((4, 4), (2, 3), (2, 3))
    b = seg2bmap(seg)
    expected = np.zeros((4, 4), bool)
    expected[1, 1:4] = True  # above the square
    expected[2:4, 1] = True  # left of it
    expected[3, 3] = False
    assert (b == expected).all()


def test_disk_matches_skimage():
    from skimage.morphology import disk as sk_disk
    for r in range(0, 10):
        assert (disk(r) == sk_disk(r).astype(np.uint8)).all()


def test_boundary_tolerance():
    assert boundary_tolerance((8, 8)) == 1  # 0.09 -> 1
    assert boundary_tolerance((480, 854)) == 8  # 0.008 * 979.7 = 7.84 -> 8
    assert boundary_tolerance((480, 854), bound_th=3) == 3  # pixels


def test_square_shifted_by_two_columns():
    gt = box((10, 10), (2, 5), (2, 5))
    pred = box((10, 10), (2, 5), (4, 7))
    # J: overlap 4 rows x 2 cols = 8, union 16 + 16 - 8 = 24
    assert db_eval_iou(gt, pred) == pytest.approx(8 / 24)
    # F: both boundaries have 16 pixels (perimeters of 5x5 boxes at cols
    # 1..5 and 3..7). A predicted boundary pixel matches when a ground-truth
    # boundary pixel is at most 1 step (4-neighbour) away: the top and bottom
    # rows match at cols 3..6 (4 + 4), the left column of the prediction
    # (col 3) only at rows 2 and 4 (next to rows 1 and 5), the right column
    # (col 7) nowhere -> 10 / 16. The mirror argument gives recall 10 / 16.
    assert f_measure(gt, pred) == pytest.approx(0.625)
    assert db_eval_boundary(gt, pred) == pytest.approx(0.625)


def test_square_shifted_by_one_column_is_within_tolerance():
    gt = box((8, 8), (2, 5), (2, 5))
    pred = box((8, 8), (2, 5), (3, 6))
    assert db_eval_iou(gt, pred) == pytest.approx(12 / 20)  # 4x3 / (32-12)
    assert f_measure(gt, pred) == pytest.approx(1.0)


def test_disjoint_and_empty_masks():
    gt = box((10, 10), (0, 1), (0, 1))
    pred = box((10, 10), (6, 8), (6, 8))
    empty = np.zeros((10, 10), np.uint8)
    assert db_eval_iou(gt, pred) == 0
    assert f_measure(gt, pred) == 0  # P = R = 0
    assert db_eval_iou(empty, empty) == 1  # empty union counts as 1
    assert f_measure(empty, empty) == 1  # P = R = 1
    assert f_measure(gt, empty) == 0  # P = 1, R = 0
    assert f_measure(empty, pred) == 0  # P = 0, R = 1


def test_per_frame_arrays():
    gt = np.stack([box((10, 10), (2, 5), (2, 5))] * 2)
    pred = np.stack([box((10, 10), (2, 5), (2, 5)),
                     box((10, 10), (2, 5), (4, 7))])
    np.testing.assert_allclose(db_eval_iou(gt, pred), [1, 1 / 3])
    np.testing.assert_allclose(db_eval_boundary(gt, pred), [1, 0.625])
    with pytest.raises(ValueError, match='one shape'):
        db_eval_iou(gt, pred[:, :5])


def test_db_statistics_by_hand():
    # 8 frames: bins at round(linspace(1, 8, 5)) - 1 = [0, 2, 4, 5, 7]:
    # [0:3], [2:5], [4:6], [5:8]
    v = np.array([1.0, 0.8, 0.6, 0.4, 0.4, 0.2, 0.2, 0.2])
    mean, recall, decay = db_statistics(v)
    assert mean == pytest.approx(v.mean())
    assert recall == pytest.approx(3 / 8)  # 1.0, 0.8, 0.6 > 0.5
    assert decay == pytest.approx(0.8 - 0.2)  # mean(1, .8, .6) - mean(.2 x3)


def test_evaluate_sequence_skips_first_and_last_and_splits_objects():
    T = 4
    gt = np.zeros((T, 10, 10), np.uint8)
    gt[:, 2:6, 2:6] = 1
    gt[:, 7:9, 7:9] = 2
    gt[:, 0, 0] = 255  # void counts as background
    pred = gt.copy()
    pred[:, 0, 0] = 0
    pred[1, 2:6, 2:6] = 0
    pred[1, 2:6, 4:8] = 1  # object 1 shifted by 2 in frame 1
    pred[-1] = 0  # the last frame is not evaluated
    j, f = evaluate_sequence(gt, pred)
    assert j.shape == f.shape == (2, T - 2)
    np.testing.assert_allclose(j[0], [1 / 3, 1])
    np.testing.assert_allclose(f[0], [0.625, 1])
    np.testing.assert_allclose(j[1], [1, 1])  # object 2 is untouched
    np.testing.assert_allclose(f[1], [1, 1])
    pred[2, 0, 0] = 3
    with pytest.raises(ValueError, match='object id 3'):
        evaluate_sequence(gt, pred)


def test_object_missing_from_prediction_scores_zero():
    gt = np.zeros((3, 10, 10), np.uint8)
    gt[:, 1:4, 1:4] = 1
    gt[:, 6:9, 6:9] = 2
    pred = np.where(gt == 2, 0, gt)
    j, f = evaluate_sequence(gt, pred)
    np.testing.assert_allclose(j, [[1], [0]])
    np.testing.assert_allclose(f, [[1], [0]])


def test_summary_and_tables():
    per_object = {'a_1': (np.array([1.0, 0.5, 0.0]), np.array([1.0] * 3)),
                  'b_1': (np.array([0.0] * 3), np.array([0.5] * 3))}
    glob, rows = summarise(per_object)
    assert glob['J-Mean'] == pytest.approx((0.5 + 0.0) / 2)
    assert glob['F-Mean'] == pytest.approx((1.0 + 0.5) / 2)
    assert glob['J&F-Mean'] == pytest.approx((0.25 + 0.75) / 2)
    # recall: a has 1 of 3 frames > 0.5 (0.5 is not), b none
    assert glob['J-Recall'] == pytest.approx((1 / 3 + 0) / 2)
    # 3 frames: edges round(linspace(1, 3, 5)) - 1 = [0, 1, 1, 2, 2], so the
    # first bin is frames [0:2] and the last [2:3]; a: mean(1, .5) - 0
    assert glob['J-Decay'] == pytest.approx((0.75 + 0) / 2)
    assert [r['Sequence'] for r in rows] == ['a_1', 'b_1']
    assert rows[1]['J&F-Mean'] == pytest.approx(0.25)
    md = format_table([glob], 'markdown')
    assert md.splitlines()[0].startswith('| J&F-Mean | J-Mean')
    assert md.splitlines()[2].startswith('| 0.500 | 0.250')
    csv = format_table(rows, 'csv')
    assert csv.splitlines() == ['Sequence,J-Mean,F-Mean,J&F-Mean',
                                'a_1,0.500,1.000,0.750',
                                'b_1,0.000,0.500,0.250']
    with pytest.raises(ValueError, match='fmt'):
        format_table(rows, 'html')


def test_sequence_rows_average_objects():
    rows = [{'Sequence': 'dog-jump_1', 'J-Mean': 0.5, 'F-Mean': 0.7},
            {'Sequence': 'dog-jump_2', 'J-Mean': 0.3, 'F-Mean': 0.1},
            {'Sequence': 'cows_1', 'J-Mean': 1.0, 'F-Mean': 0.9}]
    out = sequence_rows(rows)
    assert [(r['Sequence'], r['Objects']) for r in out] == [('dog-jump', 2),
                                                           ('cows', 1)]
    assert out[0]['J-Mean'] == pytest.approx(0.4)
    assert out[0]['F-Mean'] == pytest.approx(0.4)
    assert out[1]['J&F-Mean'] == pytest.approx(0.95)


def test_evaluate_results_names_missing_sequences():
    gt = {'s': np.ones((3, 4, 4), np.uint8)}
    glob, rows = evaluate_results(gt, {'s': gt['s'].copy()})
    assert glob['J&F-Mean'] == 1 and rows[0]['Sequence'] == 's_1'
    with pytest.raises(KeyError, match="'s'"):
        evaluate_results(gt, {})


def _f_by_distances(gt, pred, r):
    """F with matching by explicit distances between boundary pixels."""
    gb, pb = np.argwhere(seg2bmap(gt)), np.argwhere(seg2bmap(pred))
    if len(gb) == 0 or len(pb) == 0:
        return None
    d2 = ((pb[:, None, :] - gb[None, :, :])**2).sum(-1)  # (P, G)
    precision = (d2.min(1) <= r * r).mean()
    recall = (d2.min(0) <= r * r).mean()
    return 0 if precision + recall == 0 else \
        2 * precision * recall / (precision + recall)


@pytest.mark.parametrize('shape', [(30, 40), (240, 320)])
def test_f_matches_brute_force_distances_on_random_blobs(shape):
    import cv2
    rng = np.random.default_rng(0)
    r = boundary_tolerance(shape)
    for _ in range(3):
        noise = [cv2.GaussianBlur(rng.random(shape), (0, 0), shape[0] / 10)
                 for _ in range(2)]
        gt, pred = [(n > np.median(n)).astype(np.uint8) for n in noise]
        assert f_measure(gt, pred) == pytest.approx(
            _f_by_distances(gt, pred, r))
