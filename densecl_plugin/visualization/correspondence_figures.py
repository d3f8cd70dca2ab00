# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Figures of DenseCL's dense correspondences between two views.

Two figures, each rendered off-screen with matplotlib's Agg canvas (no
``pyplot``, so the caller's backend is left alone) and returned as an RGB
``uint8`` array:

- :func:`draw_matches`: the views side by side, a line between the centres of
  every mutual best match above a similarity threshold (the DenseCL authors'
  rule, WXinlong/DenseCL#13), coloured by similarity; a match that the crop
  geometry says is wrong (more than ``tolerance`` cells from the true cell, or
  a query cell the key view does not see) is drawn red, dashed, with crosses.
  The region both views see is outlined.
- :func:`draw_similarity_maps`: for chosen query cells, the similarity to
  every key cell as a heat map over the key view, with the argmax cell and
  the geometric truth marked.

Views are drawn in continuous pixel coordinates (pixel ``i`` spans
``[i, i + 1)``), so a cell ``(r, c)`` of an ``S_h x S_w`` grid over an
``H x W`` view is drawn at ``((c + 0.5) W / S_w, (r + 0.5) H / S_h)``: a
stride-32 backbone cell centred on the pixels it pools.
"""
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from densecl_plugin.models.utils.correspondence import (DenseMatches,
                                                        image_to_view, to_hw)

#: colour of matches that the geometry says are wrong
WRONG_COLOR = (1.0, 0.0, 0.0)
#: colour map of the similarity of correct matches and of the heat maps
SIM_CMAP = 'viridis'
_GAP = 8  # pixels between the two views


def to_rgb_image(img: Union[Tensor, np.ndarray],
                 bgr: bool = True) -> np.ndarray:
    """A view as an ``(H, W, 3)`` RGB uint8 array.

    Args:
        img (Tensor | np.ndarray): ``(3, H, W)`` tensor (as packed by
            ``PackSelfSupInputs``) or ``(H, W, 3)`` / ``(H, W)`` array.
        bgr (bool): The channels are BGR (OpenCV / mmcv loading).
            Defaults to True.

    Returns:
        np.ndarray: ``(H, W, 3)`` uint8 RGB.
    """
    if isinstance(img, Tensor):
        img = img.detach().cpu()
        img = img.permute(1, 2, 0).numpy() if img.dim() == 3 else img.numpy()
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f'expected a (3, H, W) tensor or (H, W, 3) array, '
                         f'got shape {img.shape}')
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img[..., ::-1] if bgr else img)


def cell_centres_px(grid_size: Union[int, Sequence[int]], height: int,
                    width: int) -> np.ndarray:
    """Pixel centres of the cells of a grid over an ``height x width`` view.

    Returns:
        np.ndarray: ``(S_h * S_w, 2)`` rows of ``(x, y)``, row-major.
    """
    S_h, S_w = to_hw(grid_size)
    y = (np.arange(S_h) + 0.5) * height / S_h
    x = (np.arange(S_w) + 0.5) * width / S_w
    yy, xx = np.meshgrid(y, x, indexing='ij')
    return np.stack([xx.ravel(), yy.ravel()], axis=1)


def overlap_in_view(bbox: Sequence[float], flip: bool,
                    other_bbox: Sequence[float], height: int,
                    width: int) -> Optional[Tuple[float, float, float, float]]:
    """The part of a view that another view also sees, in view pixels.

    Args:
        bbox (Sequence[float]): This view's crop ``(x1, y1, x2, y2)``.
        flip (bool): This view is flipped.
        other_bbox (Sequence[float]): The other view's crop.
        height (int): This view's height in pixels.
        width (int): This view's width in pixels.

    Returns:
        tuple | None: ``(x1, y1, x2, y2)`` in this view's pixels, or None when
        the crops do not overlap.
    """
    x1, y1 = max(bbox[0], other_bbox[0]), max(bbox[1], other_bbox[1])
    x2, y2 = min(bbox[2], other_bbox[2]), min(bbox[3], other_bbox[3])
    if x1 >= x2 or y1 >= y2:
        return None
    corners = torch.tensor([[[x1, y1], [x2, y2]]], dtype=torch.float64)
    box = torch.tensor([list(bbox)], dtype=torch.float64)  # (1, 4)
    uv = image_to_view(corners, box, torch.tensor([bool(flip)]))[0]  # (2, 2)
    us, vs = sorted(uv[:, 0].tolist()), sorted(uv[:, 1].tolist())
    return us[0] * width, vs[0] * height, us[1] * width, vs[1] * height


def _canvas(width_px: int, height_px: int, dpi: int = 100):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _render(fig) -> np.ndarray:
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def _side_by_side(q_img: np.ndarray, k_img: np.ndarray) -> np.ndarray:
    H = max(q_img.shape[0], k_img.shape[0])
    W = q_img.shape[1] + _GAP + k_img.shape[1]
    out = np.full((H, W, 3), 255, np.uint8)
    out[:q_img.shape[0], :q_img.shape[1]] = q_img
    out[:k_img.shape[0], q_img.shape[1] + _GAP:] = k_img
    return out


def _outline(ax, rect, dx: float = 0.) -> None:
    from matplotlib.patches import Rectangle
    if rect is not None:
        ax.add_patch(Rectangle((rect[0] + dx, rect[1]),
                               rect[2] - rect[0], rect[3] - rect[1],
                               fill=False, ec='white', lw=1.2, ls=':'))


def draw_matches(q_img: np.ndarray, k_img: np.ndarray, matches: DenseMatches,
                 q_geom: Tuple[Sequence[float], bool],
                 k_geom: Tuple[Sequence[float], bool], threshold: float = 0.9,
                 index: int = 0, title: Optional[str] = None,
                 scale: float = 3.0) -> np.ndarray:
    """Draw the mutual best matches above ``threshold`` between two views.

    Args:
        q_img (np.ndarray): ``(H, W, 3)`` RGB query view.
        k_img (np.ndarray): ``(H', W', 3)`` RGB key view.
        matches (DenseMatches): From :func:`match_views`.
        q_geom (tuple): ``(crop_bbox, flip)`` of the query view.
        k_geom (tuple): ``(crop_bbox, flip)`` of the key view.
        threshold (float): Keep matches with similarity above it.
            Defaults to 0.9.
        index (int): Which pair of the batch. Defaults to 0.
        title (str, optional): Defaults to None (a summary of the counts).
        scale (float): Figure pixels per view pixel. Defaults to 3.0.

    Returns:
        np.ndarray: ``(H_fig, W_fig, 3)`` uint8 RGB figure.
    """
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    canvas = _side_by_side(q_img, k_img)
    H, W = canvas.shape[:2]
    dx = q_img.shape[1] + _GAP
    fig = _canvas(int(W * scale) + 110, int(H * scale) + 70)
    ax = fig.add_axes([0.02, 0.02, 0.84, 0.86])
    cax = fig.add_axes([0.88, 0.1, 0.03, 0.7])
    ax.imshow(canvas, extent=(0, W, H, 0))
    ax.set_axis_off()
    _outline(ax, overlap_in_view(*q_geom, k_geom[0], *q_img.shape[:2]))
    _outline(ax, overlap_in_view(*k_geom, q_geom[0], *k_img.shape[:2]), dx)

    q_xy = cell_centres_px(matches.grid_size, *q_img.shape[:2])
    k_xy = cell_centres_px(matches.key_grid_size, *k_img.shape[:2])
    kept = matches.kept(threshold)[index].cpu().numpy()
    correct = matches.correct[index].cpu().numpy()
    ind = matches.ind[index].cpu().numpy()
    score = matches.score[index].float().cpu().numpy()
    norm = Normalize(vmin=min(threshold, 0.999), vmax=1.0)
    cmap = colormaps[SIM_CMAP]
    n_right = n_wrong = 0
    for i in np.flatnonzero(kept):
        (x0, y0), (x1, y1) = q_xy[i], k_xy[ind[i]]
        if correct[i]:
            n_right += 1
            ax.plot([x0, x1 + dx], [y0, y1], '-o', color=cmap(norm(score[i])),
                    lw=1.2, ms=2.5)
        else:
            n_wrong += 1
            ax.plot([x0, x1 + dx], [y0, y1], '--x', color=WRONG_COLOR,
                    lw=1.0, ms=4)
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax,
                 label='cosine similarity')
    if title is None:
        n_valid = int(matches.valid[index].sum())
        acc = matches.correct[index].sum().item() / max(n_valid, 1)
        title = (f'{n_right + n_wrong} mutual matches with sim > '
                 f'{threshold:g}: {n_right} right, {n_wrong} wrong (red)\n'
                 f'argmax within {matches.tolerance} cell of the geometry: '
                 f'{acc:.0%} of {n_valid} overlapping cells')
    ax.set_title(title, fontsize=8)
    return _render(fig)


def default_cells(matches: DenseMatches, num: int = 3, index: int = 0) -> list:
    """Query cells worth a heat map: ``num`` overlapping cells spread evenly
    over the overlap, or the centre cell when the views do not overlap."""
    valid = np.flatnonzero(matches.valid[index].cpu().numpy())
    if len(valid) == 0:
        S_h, S_w = matches.grid_size
        return [(S_h // 2) * S_w + S_w // 2]
    picks = np.linspace(0, len(valid) - 1, num + 2)[1:-1].round().astype(int)
    return sorted(set(valid[picks].tolist()))


def draw_similarity_maps(q_img: np.ndarray, k_img: np.ndarray,
                         matches: DenseMatches, cells: Sequence[int],
                         index: int = 0, scale: float = 2.5) -> np.ndarray:
    """For each query cell, its similarity to every key cell, on the key view.

    Each row shows the query view with the cell boxed, then the key view under
    the heat map with the argmax cell (white) and the geometric truth (green,
    dashed; absent when the key view does not see the query cell).

    Args:
        q_img (np.ndarray): ``(H, W, 3)`` RGB query view.
        k_img (np.ndarray): ``(H', W', 3)`` RGB key view.
        matches (DenseMatches): From :func:`match_views`.
        cells (Sequence[int]): Flat query cell indices.
        index (int): Which pair of the batch. Defaults to 0.
        scale (float): Figure pixels per view pixel. Defaults to 2.5.

    Returns:
        np.ndarray: ``(H_fig, W_fig, 3)`` uint8 RGB figure.
    """
    from matplotlib.patches import Rectangle
    S_h, S_w = matches.grid_size
    Sk_h, Sk_w = matches.key_grid_size
    cells = [int(c) for c in cells]
    bad = [c for c in cells if not 0 <= c < S_h * S_w]
    if not cells or bad:
        raise ValueError(f'cells must be flat query cell indices in '
                         f'[0, {S_h * S_w}), got {cells}')
    Hq, Wq = q_img.shape[:2]
    Hk, Wk = k_img.shape[:2]
    row_px = max(Hq, Hk) * scale
    fig = _canvas(int((Wq + Wk) * scale) + 160, int(row_px * len(cells)) + 40)
    sim = matches.sim[index].float().cpu().numpy()  # (S_q, S_k)
    for row, c in enumerate(cells):
        ax_q = fig.add_subplot(len(cells), 2, 2 * row + 1)
        ax_k = fig.add_subplot(len(cells), 2, 2 * row + 2)
        ax_q.imshow(q_img, extent=(0, Wq, Hq, 0))
        r, cc = divmod(c, S_w)
        ax_q.add_patch(Rectangle((cc * Wq / S_w, r * Hq / S_h),
                                 Wq / S_w, Hq / S_h, fill=False, ec='yellow',
                                 lw=2))
        ax_q.set_title(f'query cell (row {r}, col {cc})', fontsize=8)
        ax_k.imshow(k_img, extent=(0, Wk, Hk, 0))
        heat = ax_k.imshow(sim[c].reshape(Sk_h, Sk_w), cmap=SIM_CMAP,
                           alpha=0.55, interpolation='nearest',
                           extent=(0, Wk, Hk, 0))
        best = int(matches.ind[index, c])
        boxes = [(best, 'white', '-')]
        if bool(matches.valid[index, c]):
            boxes.append((int(matches.gt_ind[index, c]), 'lime', '--'))
        for k, color, ls in boxes:
            kr, kc = divmod(k, Sk_w)
            ax_k.add_patch(Rectangle((kc * Wk / Sk_w, kr * Hk / Sk_h),
                                     Wk / Sk_w, Hk / Sk_h, fill=False,
                                     ec=color, lw=2, ls=ls))
        verdict = ('right' if bool(matches.correct[index, c]) else 'wrong') \
            if bool(matches.valid[index, c]) else 'not in key view'
        ax_k.set_title(f'similarity (max {sim[c].max():.2f}, argmax white, '
                       f'truth green): {verdict}', fontsize=8)
        fig.colorbar(heat, ax=ax_k, fraction=0.046, pad=0.04)
        for ax in (ax_q, ax_k):
            ax.set_axis_off()
    fig.tight_layout()
    return _render(fig)


def save_png(rgb: np.ndarray, path: str) -> str:
    """Write an RGB uint8 array as a PNG (creating the folder) and return the
    path."""
    import os

    import matplotlib.image
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    matplotlib.image.imsave(path, rgb)
    return path
