# Copyright (c) densecl_plugin contributors. All rights reserved.
"""DAVIS-2017 semi-supervised metrics: region J and boundary F.

The definitions follow the official ``davis2017-evaluation`` package
(Pont-Tuset et al., "The 2017 DAVIS Challenge on Video Object Segmentation",
arXiv:1704.00675), so that numbers written here can be compared with numbers
published by it:

- **J** (region similarity) is the Jaccard index (IoU) of one object's
  predicted and ground-truth masks; an empty union counts as 1.
- **F** (contour accuracy) is the F-measure of boundary precision and recall.
  Boundaries are 1-pixel maps from :func:`seg2bmap` (offset by half a pixel
  towards the origin); a boundary pixel matches when it lies within a disk of
  radius ``ceil(bound_th * diagonal)`` (``bound_th = 0.008``) of the other
  boundary. Empty boundaries follow the official conventions (both empty:
  P = R = 1; only the prediction empty: P = 1, R = 0; only the ground truth
  empty: P = 0, R = 1).
- Per object, the per-frame values of all frames but the first and the last
  are summarised by :func:`db_statistics` into Mean, Recall (fraction of
  frames above 0.5) and Decay (mean of the first quarter minus mean of the
  last quarter); the global ``J&F-Mean`` is the mean of ``J-Mean`` and
  ``F-Mean``, each averaged over all objects of all sequences.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

#: The official boundary tolerance, a fraction of the image diagonal.
BOUND_TH = 0.008


def db_eval_iou(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Region similarity J: IoU of binary masks, per frame.

    Args:
        gt (np.ndarray): ground-truth mask(s), ``(H, W)`` or ``(T, H, W)``;
            non-zero is foreground.
        pred (np.ndarray): predicted mask(s) of the same shape.

    Returns:
        np.ndarray: J, a scalar array for one frame or ``(T,)``; 1 where both
        masks are empty.
    """
    if gt.shape != pred.shape:
        raise ValueError(f'J needs masks of one shape, got ground truth '
                         f'{gt.shape} and prediction {pred.shape}')
    gt, pred = gt.astype(bool), pred.astype(bool)
    inter = np.sum(gt & pred, axis=(-2, -1))  # (T,) or ()
    union = np.sum(gt | pred, axis=(-2, -1))  # (T,) or ()
    with np.errstate(divide='ignore', invalid='ignore'):
        j = inter / union
    return np.where(union == 0, 1.0, j)


def seg2bmap(seg: np.ndarray) -> np.ndarray:
    """One-pixel-wide boundary map of a binary mask, as DAVIS computes it.

    A pixel is on the boundary when it differs from its right, lower or
    lower-right neighbour, so boundaries sit half a pixel towards the origin
    from the true contour; the last row (column) compares only with its right
    (lower) neighbour, and the bottom-right pixel is never a boundary.

    Args:
        seg (np.ndarray): ``(H, W)`` mask; non-zero is foreground.

    Returns:
        np.ndarray: ``(H, W)`` bool boundary map.
    """
    if seg.ndim != 2:
        raise ValueError(f'seg2bmap needs a 2-D mask, got shape {seg.shape}')
    seg = seg.astype(bool)
    e = np.zeros_like(seg)  # right neighbour
    s = np.zeros_like(seg)  # lower neighbour
    se = np.zeros_like(seg)  # lower-right neighbour
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = (seg ^ e) | (seg ^ s) | (seg ^ se)
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = False
    return b


def disk(radius: int) -> np.ndarray:
    """A disk structuring element: ``x**2 + y**2 <= radius**2``.

    Args:
        radius (int): radius in pixels.

    Returns:
        np.ndarray: ``(2r+1, 2r+1)`` uint8 array of 0/1 (the same as
        ``skimage.morphology.disk(radius)``).
    """
    r = np.arange(-radius, radius + 1)
    return (r[:, None]**2 + r[None, :]**2 <= radius**2).astype(np.uint8)


def boundary_tolerance(shape: Tuple[int, int],
                       bound_th: float = BOUND_TH) -> int:
    """Dilation radius in pixels: ``ceil(bound_th * diagonal)``.

    ``bound_th >= 1`` is taken as a radius in pixels, as in the official code.

    Args:
        shape (tuple[int, int]): ``(H, W)`` of the masks.
        bound_th (float): tolerance. Defaults to 0.008.

    Returns:
        int: the radius (8 for 480x854 frames).
    """
    if bound_th >= 1:
        return int(bound_th)
    return int(math.ceil(bound_th * math.hypot(*shape)))


def f_measure(gt: np.ndarray,
              pred: np.ndarray,
              bound_th: float = BOUND_TH) -> float:
    """Contour accuracy F of one frame.

    Args:
        gt (np.ndarray): ``(H, W)`` ground-truth mask.
        pred (np.ndarray): ``(H, W)`` predicted mask.
        bound_th (float): boundary tolerance as a fraction of the diagonal
            (or pixels if >= 1). Defaults to 0.008.

    Returns:
        float: ``2PR / (P + R)`` (0 when P + R = 0).
    """
    if gt.shape != pred.shape or gt.ndim != 2:
        raise ValueError(f'F needs two 2-D masks of one shape, got ground '
                         f'truth {gt.shape} and prediction {pred.shape}')
    selem = disk(boundary_tolerance(gt.shape, bound_th))
    gt_b = seg2bmap(gt)  # (H, W) bool
    pred_b = seg2bmap(pred)  # (H, W) bool
    gt_dil = cv2.dilate(gt_b.astype(np.uint8), selem).astype(bool)
    pred_dil = cv2.dilate(pred_b.astype(np.uint8), selem).astype(bool)
    n_pred, n_gt = int(pred_b.sum()), int(gt_b.sum())
    if n_pred == 0 and n_gt == 0:
        precision, recall = 1.0, 1.0
    elif n_pred == 0:
        precision, recall = 1.0, 0.0
    elif n_gt == 0:
        precision, recall = 0.0, 1.0
    else:
        precision = float(np.sum(pred_b & gt_dil)) / n_pred
        recall = float(np.sum(gt_b & pred_dil)) / n_gt
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def db_eval_boundary(gt: np.ndarray,
                     pred: np.ndarray,
                     bound_th: float = BOUND_TH) -> np.ndarray:
    """Contour accuracy F per frame.

    Args:
        gt (np.ndarray): ``(H, W)`` or ``(T, H, W)`` ground-truth masks.
        pred (np.ndarray): predicted masks of the same shape.
        bound_th (float): see :func:`f_measure`. Defaults to 0.008.

    Returns:
        np.ndarray: F, a scalar array or ``(T,)``.
    """
    if gt.shape != pred.shape:
        raise ValueError(f'F needs masks of one shape, got ground truth '
                         f'{gt.shape} and prediction {pred.shape}')
    if gt.ndim == 2:
        return np.asarray(f_measure(gt, pred, bound_th))
    return np.array([f_measure(g, p, bound_th) for g, p in zip(gt, pred)])


def db_statistics(per_frame: np.ndarray) -> Tuple[float, float, float]:
    """Mean, recall and decay of one object's per-frame values.

    Decay splits the frames into 4 bins at
    ``round(linspace(1, T, 5)) - 1`` (neighbouring bins share their edge
    frame) and returns mean(first bin) - mean(last bin).

    Args:
        per_frame (np.ndarray): ``(T,)`` values (J or F) of one object.

    Returns:
        tuple[float, float, float]: ``(mean, recall, decay)``.
    """
    per_frame = np.asarray(per_frame, dtype=np.float64)
    if per_frame.ndim != 1 or per_frame.size == 0:
        raise ValueError('db_statistics needs a non-empty 1-D array of '
                         f'per-frame values, got shape {per_frame.shape}')
    mean = float(np.nanmean(per_frame))
    recall = float(np.nanmean(per_frame > 0.5))
    edges = (np.round(np.linspace(1, len(per_frame), 5) + 1e-10) -
             1).astype(int)
    bins = [per_frame[edges[i]:edges[i + 1] + 1] for i in range(4)]
    decay = float(np.nanmean(bins[0]) - np.nanmean(bins[3]))
    return mean, recall, decay


def split_objects(masks: np.ndarray, num_objects: int) -> np.ndarray:
    """One binary mask per object id ``1..num_objects`` from index masks.

    Args:
        masks (np.ndarray): ``(T, H, W)`` integer masks (0 background).
        num_objects (int): number of objects.

    Returns:
        np.ndarray: ``(num_objects, T, H, W)`` bool.
    """
    ids = np.arange(1, num_objects + 1)[:, None, None, None]  # (O, 1, 1, 1)
    return masks[None] == ids  # (O, T, H, W)


def evaluate_sequence(gt_masks: np.ndarray,
                      pred_masks: np.ndarray,
                      bound_th: float = BOUND_TH
                      ) -> Tuple[np.ndarray, np.ndarray]:
    """Per-object, per-frame J and F of one sequence (semi-supervised task).

    As the official evaluation does: 255 (void) in the ground truth counts as
    background, the number of objects is the largest id of the first
    ground-truth frame, and the first and last frames are left out. An
    object the prediction never mentions scores as an empty mask.

    Args:
        gt_masks (np.ndarray): ``(T, H, W)`` ground-truth index masks.
        pred_masks (np.ndarray): ``(T, H, W)`` predicted index masks.
        bound_th (float): see :func:`f_measure`. Defaults to 0.008.

    Returns:
        tuple[np.ndarray, np.ndarray]: J and F, each ``(O, T - 2)``.

    Raises:
        ValueError: for shape mismatches, fewer than 3 frames, or predicted
            ids above the number of objects.
    """
    if gt_masks.shape != pred_masks.shape or gt_masks.ndim != 3:
        raise ValueError(f'need (T, H, W) ground truth and prediction of one '
                         f'shape, got {gt_masks.shape} and {pred_masks.shape}')
    if gt_masks.shape[0] < 3:
        raise ValueError('DAVIS leaves out the first and last frames, so a '
                         'sequence needs >= 3 frames, got '
                         f'{gt_masks.shape[0]}')
    gt_masks = np.where(gt_masks == 255, 0, gt_masks)
    num_objects = int(gt_masks[0].max())
    gt_masks, pred_masks = gt_masks[1:-1], pred_masks[1:-1]
    pred_max = int(pred_masks.max())
    if pred_max > num_objects:
        raise ValueError(f'prediction has object id {pred_max}, but the first '
                         f'ground-truth frame has only {num_objects} objects')
    gt_obj = split_objects(gt_masks, num_objects)  # (O, T-2, H, W)
    pred_obj = split_objects(pred_masks, num_objects)  # (O, T-2, H, W)
    j = np.stack([db_eval_iou(g, p) for g, p in zip(gt_obj, pred_obj)])
    f = np.stack([db_eval_boundary(g, p, bound_th)
                  for g, p in zip(gt_obj, pred_obj)])
    return j.reshape(num_objects, -1), f.reshape(num_objects, -1)


def summarise(per_object: Dict[str, Tuple[np.ndarray, np.ndarray]]
              ) -> Tuple[Dict[str, float], List[Dict[str, object]]]:
    """Global and per-object DAVIS statistics.

    Args:
        per_object (dict): ``'<seq>_<id>' -> (J per frame, F per frame)``, in
            the order the rows should appear.

    Returns:
        tuple[dict, list[dict]]: the global row (``J&F-Mean``, ``J-Mean``,
        ``J-Recall``, ``J-Decay``, ``F-Mean``, ``F-Recall``, ``F-Decay``) and
        one row per object (``Sequence``, ``J-Mean``, ``F-Mean``,
        ``J&F-Mean``).
    """
    if not per_object:
        raise ValueError('no objects to summarise')
    stats = {name: (db_statistics(j), db_statistics(f))
             for name, (j, f) in per_object.items()}
    j_stats = np.array([s[0] for s in stats.values()])  # (O, 3)
    f_stats = np.array([s[1] for s in stats.values()])  # (O, 3)
    j_mean, j_recall, j_decay = j_stats.mean(0)
    f_mean, f_recall, f_decay = f_stats.mean(0)
    global_row = {
        'J&F-Mean': float((j_mean + f_mean) / 2),
        'J-Mean': float(j_mean), 'J-Recall': float(j_recall),
        'J-Decay': float(j_decay), 'F-Mean': float(f_mean),
        'F-Recall': float(f_recall), 'F-Decay': float(f_decay)}
    rows = [{'Sequence': name, 'J-Mean': js[0], 'F-Mean': fs[0],
             'J&F-Mean': (js[0] + fs[0]) / 2}
            for name, (js, fs) in stats.items()]
    return global_row, rows


def sequence_rows(object_rows: Sequence[Dict[str, object]]
                  ) -> List[Dict[str, object]]:
    """Average per-object rows (``'<seq>_<id>'``) into one row per sequence.

    Args:
        object_rows (Sequence[dict]): rows of :func:`summarise`.

    Returns:
        list[dict]: ``Sequence``, ``Objects``, ``J-Mean``, ``F-Mean``,
        ``J&F-Mean`` per sequence, in first-appearance order.
    """
    groups: Dict[str, List[Dict[str, object]]] = {}
    for row in object_rows:
        groups.setdefault(str(row['Sequence']).rsplit('_', 1)[0],
                          []).append(row)
    out = []
    for seq, rows in groups.items():
        j = float(np.mean([r['J-Mean'] for r in rows]))
        f = float(np.mean([r['F-Mean'] for r in rows]))
        out.append({'Sequence': seq, 'Objects': len(rows), 'J-Mean': j,
                    'F-Mean': f, 'J&F-Mean': (j + f) / 2})
    return out


def format_table(rows: Sequence[Dict[str, object]],
                 fmt: str = 'markdown',
                 digits: int = 3) -> str:
    """Render rows of equal keys as a markdown or CSV table.

    Args:
        rows (Sequence[dict]): the rows; the first row's keys are the columns.
        fmt (str): ``'markdown'`` or ``'csv'``. Defaults to ``'markdown'``.
        digits (int): decimals for floats. Defaults to 3.

    Returns:
        str: the table, ending with a newline.
    """
    if fmt not in ('markdown', 'csv'):
        raise ValueError(f"fmt must be 'markdown' or 'csv', got {fmt!r}")
    if not rows:
        return ''
    cols = list(rows[0])

    def cell(v: object) -> str:
        return f'{v:.{digits}f}' if isinstance(v, (float, np.floating)) \
            else str(v)

    lines = [[str(c) for c in cols]] + [[cell(r[c]) for c in cols]
                                         for r in rows]
    if fmt == 'csv':
        return '\n'.join(','.join(line) for line in lines) + '\n'
    out = ['| ' + ' | '.join(lines[0]) + ' |',
           '|' + '|'.join('---' for _ in cols) + '|']
    out += ['| ' + ' | '.join(line) + ' |' for line in lines[1:]]
    return '\n'.join(out) + '\n'


def evaluate_results(gt: Dict[str, np.ndarray],
                     pred: Dict[str, np.ndarray],
                     bound_th: float = BOUND_TH,
                     sequences: Optional[Sequence[str]] = None
                     ) -> Tuple[Dict[str, float], List[Dict[str, object]]]:
    """J&F of a set of sequences held in memory.

    Args:
        gt (dict[str, np.ndarray]): sequence -> ``(T, H, W)`` ground truth.
        pred (dict[str, np.ndarray]): sequence -> ``(T, H, W)`` prediction.
        bound_th (float): see :func:`f_measure`. Defaults to 0.008.
        sequences (Sequence[str], optional): the order of sequences.
            Defaults to sorted ``gt`` keys.

    Returns:
        tuple[dict, list[dict]]: see :func:`summarise`.
    """
    per_object = {}
    for seq in (sequences or sorted(gt)):
        if seq not in pred:
            raise KeyError(f'no prediction for sequence {seq!r}')
        j, f = evaluate_sequence(gt[seq], pred[seq], bound_th)
        for i in range(j.shape[0]):
            per_object[f'{seq}_{i + 1}'] = (j[i], f[i])
    return summarise(per_object)
