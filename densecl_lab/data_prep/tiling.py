# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Cut images, boxes and label maps into tiles, and split tiles."""
from typing import List, Sequence, Tuple

import cv2
import numpy as np


def tile_origins(length: int, tile: int) -> List[int]:
    """Start offsets of tiles of size ``tile`` that cover ``[0, length)``.

    Tiles do not overlap except the last one, which is moved back to end at
    ``length``; a ``tile`` >= ``length`` gives one tile at 0.
    """
    if tile <= 0:
        raise ValueError(f'tile size must be positive, got {tile}')
    if tile >= length:
        return [0]
    starts = list(range(0, length - tile + 1, tile))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


def tile_grid(height: int, width: int, tile: int) -> List[Tuple[int, int,
                                                                int, int]]:
    """All tiles ``(x0, y0, x1, y1)`` (pixel edges) covering an image."""
    return [(x, y, min(x + tile, width), min(y + tile, height))
            for y in tile_origins(height, tile)
            for x in tile_origins(width, tile)]


def crop_boxes(boxes: np.ndarray, window: Sequence[int],
               min_visible: float = 0.5) -> Tuple[np.ndarray, np.ndarray]:
    """Boxes seen through a window, clipped to it.

    A box is kept when at least ``min_visible`` of its area lies inside the
    window; kept boxes are clipped and shifted to window coordinates.

    Args:
        boxes (ndarray): (N, 4) ``x1, y1, x2, y2`` pixel edges.
        window (Sequence[int]): ``x0, y0, x1, y1``.
        min_visible (float): the smallest kept fraction of a box's area.
            Defaults to 0.5.

    Returns:
        tuple: (M, 4) float32 clipped boxes in window coordinates, and the
        (M,) indices of the kept boxes.
    """
    x0, y0, x1, y1 = window
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    clipped = boxes.copy()
    clipped[:, 0::2] = clipped[:, 0::2].clip(x0, x1)
    clipped[:, 1::2] = clipped[:, 1::2].clip(y0, y1)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    inside = ((clipped[:, 2] - clipped[:, 0]) *
              (clipped[:, 3] - clipped[:, 1]))
    keep = np.nonzero((area > 0) & (inside >= min_visible * area))[0]
    out = clipped[keep] - np.asarray([x0, y0, x0, y0], np.float32)
    return out, keep


def resize_image(img: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Resize an image to ``(width, height)`` (area filter when shrinking)."""
    w, h = size
    if (img.shape[1], img.shape[0]) == (w, h):
        return img
    shrink = w < img.shape[1]
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if shrink
                      else cv2.INTER_LINEAR)


def resize_labels(labels: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Resize a label / instance map to ``(width, height)`` (nearest)."""
    w, h = size
    if (labels.shape[1], labels.shape[0]) == (w, h):
        return labels
    dtype = labels.dtype
    out = cv2.resize(labels.astype(np.float32), (w, h),
                     interpolation=cv2.INTER_NEAREST)
    return out.astype(dtype)


def split_indices(n: int, val_fraction: float, seed: int = 0
                  ) -> Tuple[List[int], List[int]]:
    """A seeded train / val split of ``range(n)``, each part non-empty.

    Args:
        n (int): number of items (>= 2).
        val_fraction (float): share of items for validation, in (0, 1).
        seed (int): shuffling seed. Defaults to 0.

    Returns:
        tuple[list[int], list[int]]: sorted train and val indices.
    """
    if n < 2:
        raise ValueError(f'need at least 2 tiles to split, got {n}: use a '
                         'smaller tile size or more images')
    if not 0 < val_fraction < 1:
        raise ValueError(f'val_fraction must be in (0, 1), got {val_fraction}')
    order = np.random.default_rng(seed).permutation(n)
    n_val = min(max(1, round(n * val_fraction)), n - 1)
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())
