# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Dense correspondences of two augmented views, from geometry and features.

DenseCL pairs every query cell of the ``S_h x S_w`` backbone grid of view 1
with one key cell of view 2, by the argmax of the cosine similarity of their
backbone features (paper, Sec. 3.3). Each view is a crop of the same loaded
image, so the *true* partner of a query cell follows from the crop geometry
that the view transforms record (``docs/architecture.md``):

- ``crop_bbox = (x1, y1, x2, y2)``: the crop, in the continuous pixel
  coordinates of the loaded image (pixel ``i`` covers ``[i, i + 1)``), so the
  crop covers ``[x1, x2) x [y1, y2)``;
- ``flip``: a horizontal flip applied after the crop;
- the feature grid covers the whole (resized) view, so cell ``(r, c)`` has its
  centre at ``((c + 0.5) / S_w, (r + 0.5) / S_h)`` in normalised view
  coordinates, whatever ``img_shape`` is.

A query cell centre is mapped into the image and from there into the key
view; the key cell that covers that point is the geometric truth, and the
query cell has none (``valid=False``) where the point falls outside the key
crop. Cells are flattened row-major (``index = r * S_w + c``), like
``feat.view(N, C, S_h * S_w)``.

All functions are batched over ``N`` image pairs and run on any device; none
of them needs gradients. :func:`match_packed_views` is the whole sequence for
a model and the packed views of one image (their C5 cells matched and
scored), which ``CorrespondenceHook`` and
:func:`densecl_plugin.apis.inference.match_image_views` use.
"""
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .feature_map import last_feature_map

GridSize = Union[int, Sequence[int]]


def to_hw(grid_size: GridSize) -> Tuple[int, int]:
    """Read ``grid_size`` as ``(S_h, S_w)``.

    Args:
        grid_size (int | Sequence[int]): ``S`` for an ``S x S`` grid, or
            ``(S_h, S_w)``.

    Returns:
        tuple[int, int]: ``(S_h, S_w)``.
    """
    if isinstance(grid_size, int):
        grid_size = (grid_size, grid_size)
    hw = tuple(int(s) for s in grid_size)
    if len(hw) != 2 or min(hw) < 1:
        raise ValueError(f'grid_size must be a positive int or (S_h, S_w), '
                         f'got {grid_size!r}')
    return hw  # type: ignore[return-value]


def cell_centers(grid_size: GridSize, device: Any = None,
                 dtype: torch.dtype = torch.float32) -> Tensor:
    """Centres of the cells of a grid over a view, in normalised coordinates.

    Args:
        grid_size (int | Sequence[int]): ``S`` or ``(S_h, S_w)``.
        device (torch.device, optional): Device of the result.
            Defaults to None (CPU).
        dtype (torch.dtype): Defaults to ``torch.float32``.

    Returns:
        Tensor: ``(S_h * S_w, 2)`` rows of ``(u, v)`` in ``(0, 1)``, row-major.
    """
    S_h, S_w = to_hw(grid_size)
    v = (torch.arange(S_h, device=device, dtype=dtype) + 0.5) / S_h  # (S_h,)
    u = (torch.arange(S_w, device=device, dtype=dtype) + 0.5) / S_w  # (S_w,)
    vv, uu = torch.meshgrid(v, u, indexing='ij')  # (S_h, S_w) each
    return torch.stack([uu.reshape(-1), vv.reshape(-1)], dim=1)  # (S_h*S_w, 2)


def _check_geometry(bbox: Tensor, flip: Tensor, name: str) -> None:
    if bbox.dim() != 2 or bbox.shape[1] != 4:
        raise ValueError(f'{name}_bbox must have shape (N, 4) as '
                         f'(x1, y1, x2, y2), got {tuple(bbox.shape)}')
    if flip.shape != bbox.shape[:1]:
        raise ValueError(f'{name}_flip must have shape ({bbox.shape[0]},), '
                         f'got {tuple(flip.shape)}')
    bad = (bbox[:, 2] <= bbox[:, 0]) | (bbox[:, 3] <= bbox[:, 1])
    if bool(bad.any()):
        i = int(bad.nonzero()[0])
        raise ValueError(f'{name}_bbox[{i}] = {bbox[i].tolist()} is empty: '
                         'expected x1 < x2 and y1 < y2')


def view_to_image(uv: Tensor, bbox: Tensor, flip: Tensor) -> Tensor:
    """Map normalised view coordinates to loaded-image pixels.

    Args:
        uv (Tensor): ``(N, P, 2)`` or ``(P, 2)`` points ``(u, v)`` in the view,
            ``[0, 1)`` inside it.
        bbox (Tensor): ``(N, 4)`` crop boxes ``(x1, y1, x2, y2)``.
        flip (Tensor): ``(N,)`` bool, horizontal flip after the crop.

    Returns:
        Tensor: ``(N, P, 2)`` points ``(x, y)`` in image pixels.
    """
    uv = uv.to(bbox.dtype).expand(bbox.shape[0], -1, -1) if uv.dim() == 2 \
        else uv.to(bbox.dtype)  # (N, P, 2)
    flip = flip.to(torch.bool)[:, None]  # (N, 1)
    u = torch.where(flip, 1 - uv[..., 0], uv[..., 0])  # (N, P) unflipped
    x = bbox[:, None, 0] + u * (bbox[:, None, 2] - bbox[:, None, 0])  # (N, P)
    y = bbox[:, None, 1] + uv[..., 1] * (bbox[:, None, 3] - bbox[:, None, 1])
    return torch.stack([x, y], dim=-1)  # (N, P, 2)


def image_to_view(xy: Tensor, bbox: Tensor, flip: Tensor) -> Tensor:
    """Map loaded-image pixels to normalised view coordinates.

    The inverse of :func:`view_to_image`; points outside the crop fall outside
    ``[0, 1)``.

    Args:
        xy (Tensor): ``(N, P, 2)`` points ``(x, y)`` in image pixels.
        bbox (Tensor): ``(N, 4)`` crop boxes ``(x1, y1, x2, y2)``.
        flip (Tensor): ``(N,)`` bool, horizontal flip after the crop.

    Returns:
        Tensor: ``(N, P, 2)`` points ``(u, v)`` in the view.
    """
    bbox = bbox.to(xy.dtype)
    u = (xy[..., 0] - bbox[:, None, 0]) / (bbox[:, None, 2] - bbox[:, None, 0])
    v = (xy[..., 1] - bbox[:, None, 1]) / (bbox[:, None, 3] - bbox[:, None, 1])
    u = torch.where(flip.to(torch.bool)[:, None], 1 - u, u)  # (N, P)
    return torch.stack([u, v], dim=-1)  # (N, P, 2)


@torch.no_grad()
def geometric_correspondence(q_bbox: Tensor, q_flip: Tensor, k_bbox: Tensor,
                             k_flip: Tensor, grid_size: GridSize,
                             key_grid_size: GridSize = None
                             ) -> Tuple[Tensor, Tensor]:
    """For every query cell, the key cell that sees the same image point.

    Args:
        q_bbox (Tensor): ``(N, 4)`` query-view crop boxes ``(x1, y1, x2, y2)``
            in loaded-image pixels.
        q_flip (Tensor): ``(N,)`` bool, query view flipped horizontally.
        k_bbox (Tensor): ``(N, 4)`` key-view crop boxes.
        k_flip (Tensor): ``(N,)`` bool, key view flipped horizontally.
        grid_size (int | Sequence[int]): The query feature grid, ``S`` or
            ``(S_h, S_w)``.
        key_grid_size (int | Sequence[int], optional): The key feature grid.
            Defaults to None (same as ``grid_size``).

    Returns:
        tuple[Tensor, Tensor]:

        - ``ind``: ``(N, S_h * S_w)`` long, the flat index of the key cell that
          covers each query cell centre. Where ``valid`` is False it holds the
          nearest key cell (clamped to the grid) and must be ignored.
        - ``valid``: ``(N, S_h * S_w)`` bool, the query cell centre lies
          inside the key view.
    """
    for name, bbox, flip in (('q', q_bbox, q_flip), ('k', k_bbox, k_flip)):
        _check_geometry(bbox, flip, name)
    if q_bbox.shape[0] != k_bbox.shape[0]:
        raise ValueError(f'q_bbox has {q_bbox.shape[0]} rows but k_bbox has '
                         f'{k_bbox.shape[0]}: expected one pair per image')
    Sk_h, Sk_w = to_hw(grid_size if key_grid_size is None else key_grid_size)
    dtype = torch.float64 if q_bbox.device.type == 'cpu' else torch.float32
    q_bbox, k_bbox = q_bbox.to(dtype), k_bbox.to(dtype)
    uv_q = cell_centers(grid_size, q_bbox.device, dtype)  # (S², 2)
    xy = view_to_image(uv_q, q_bbox, q_flip)  # (N, S², 2) image pixels
    uv_k = image_to_view(xy, k_bbox, k_flip)  # (N, S², 2) key view
    valid = ((uv_k >= 0) & (uv_k < 1)).all(dim=-1)  # (N, S²)
    col = (uv_k[..., 0] * Sk_w).floor().clamp(0, Sk_w - 1).long()  # (N, S²)
    row = (uv_k[..., 1] * Sk_h).floor().clamp(0, Sk_h - 1).long()  # (N, S²)
    ind = row * Sk_w + col  # (N, S²)
    return ind, valid


def views_geometry(data_samples: Sequence[Any], view: int,
                   device: Any = None) -> Tuple[Tensor, Tensor]:
    """Stack one view's crop boxes and flips from data samples' metainfo.

    Args:
        data_samples (Sequence): One data sample per image, each with a
            ``views`` metainfo list (``docs/architecture.md``) of
            ``dict(crop_bbox=(x1, y1, x2, y2), flip=bool, img_shape=(h, w))``;
            a sample may also be a plain ``dict`` metainfo.
        view (int): Which view.
        device (torch.device, optional): Defaults to None (CPU).

    Returns:
        tuple[Tensor, Tensor]: ``bbox (N, 4)`` float64 and ``flip (N,)`` bool.
    """
    boxes: List[List[float]] = []
    flips: List[bool] = []
    for i, sample in enumerate(data_samples):
        meta = sample if isinstance(sample, dict) else sample.metainfo
        where = f'data_samples[{i}] ({meta.get("img_path", "no img_path")})'
        views = meta.get('views')
        if views is None:
            raise KeyError(f'{where} has no "views" in its metainfo: expected '
                           'a list of dict(crop_bbox=..., flip=..., '
                           'img_shape=...), one per view, as recorded by '
                           'PackSelfSupInputs')
        if not -len(views) <= view < len(views):
            raise IndexError(f'{where} has {len(views)} views, asked for '
                             f'view {view}')
        record = views[view]
        if 'crop_bbox' not in record:
            raise KeyError(f'{where} views[{view}] has no "crop_bbox": '
                           f'expected (x1, y1, x2, y2), got keys '
                           f'{sorted(record)}')
        bbox = [float(c) for c in record['crop_bbox']]
        if len(bbox) != 4:
            raise ValueError(f'{where} views[{view}]["crop_bbox"] = '
                             f'{record["crop_bbox"]!r}: expected 4 numbers '
                             '(x1, y1, x2, y2)')
        boxes.append(bbox)
        flips.append(bool(record.get('flip', False)))
    return (torch.tensor(boxes, dtype=torch.float64, device=device),
            torch.tensor(flips, dtype=torch.bool, device=device))


def geometric_correspondence_from_samples(data_samples: Sequence[Any],
                                          grid_size: GridSize,
                                          query_view: int = 0,
                                          key_view: int = 1,
                                          key_grid_size: GridSize = None,
                                          device: Any = None
                                          ) -> Tuple[Tensor, Tensor]:
    """:func:`geometric_correspondence` from data samples' ``views`` metainfo.

    Args:
        data_samples (Sequence): See :func:`views_geometry`.
        grid_size (int | Sequence[int]): The query feature grid.
        query_view (int): Defaults to 0.
        key_view (int): Defaults to 1.
        key_grid_size (int | Sequence[int], optional): Defaults to None
            (same as ``grid_size``).
        device (torch.device, optional): Where to return the result; it is
            computed on the CPU. Defaults to None (CPU).

    Returns:
        tuple[Tensor, Tensor]: ``ind (N, S²)`` long and ``valid (N, S²)``
        bool.
    """
    q_bbox, q_flip = views_geometry(data_samples, query_view)  # CPU
    k_bbox, k_flip = views_geometry(data_samples, key_view)  # CPU
    ind, valid = geometric_correspondence(q_bbox, q_flip, k_bbox, k_flip,
                                          grid_size, key_grid_size)
    if device is not None and torch.device(device).type != 'cpu':
        # computed where the metainfo lives; a non-blocking copy does not
        # wait for the queued GPU work of the training step
        ind = ind.to(device, non_blocking=True)
        valid = valid.to(device, non_blocking=True)
    return ind, valid


def cosine_similarity_grid(q_b: Tensor, k_b: Tensor) -> Tensor:
    """Cosine similarity of every query cell with every key cell.

    Args:
        q_b (Tensor): ``(N, C, S_q)`` or ``(N, C, H, W)`` query features.
        k_b (Tensor): ``(N, C, S_k)`` or ``(N, C, H, W)`` key features.

    Returns:
        Tensor: ``(N, S_q, S_k)``.
    """
    q_b = F.normalize(q_b.flatten(2), dim=1)  # (N, C, S_q)
    k_b = F.normalize(k_b.flatten(2), dim=1)  # (N, C, S_k)
    return torch.bmm(q_b.transpose(1, 2), k_b)  # (N, S_q, S_k)


@torch.no_grad()
def mutual_best_matches(sim: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Argmax matches, their similarity, and which are each other's best.

    Args:
        sim (Tensor): ``(N, S_q, S_k)`` similarities.

    Returns:
        tuple[Tensor, Tensor, Tensor]: ``ind (N, S_q)`` long, the best key cell
        of each query cell; ``score (N, S_q)``, its similarity; and
        ``mutual (N, S_q)`` bool, the query cell is also that key cell's best.
    """
    score, ind = sim.max(dim=2)  # (N, S_q) each
    back = sim.argmax(dim=1)  # (N, S_k): best query cell of each key cell
    mutual = back.gather(1, ind) == torch.arange(
        sim.shape[1], device=sim.device)[None]  # (N, S_q)
    return ind, score, mutual


@torch.no_grad()
def chebyshev_distance(ind_a: Tensor, ind_b: Tensor,
                       grid_size: GridSize) -> Tensor:
    """Chebyshev (chessboard) distance between flat cell indices of one grid.

    Args:
        ind_a (Tensor): Flat indices, any shape.
        ind_b (Tensor): Flat indices, same shape.
        grid_size (int | Sequence[int]): The grid, ``S`` or ``(S_h, S_w)``.

    Returns:
        Tensor: long, same shape: ``max(|row_a - row_b|, |col_a - col_b|)``.
    """
    _, S_w = to_hw(grid_size)
    d_row = (ind_a.div(S_w, rounding_mode='floor') -
             ind_b.div(S_w, rounding_mode='floor')).abs()
    d_col = (ind_a.remainder(S_w) - ind_b.remainder(S_w)).abs()
    return torch.maximum(d_row, d_col)


@torch.no_grad()
def correspondence_accuracy(ind: Tensor, gt_ind: Tensor, valid: Tensor,
                            key_grid_size: GridSize,
                            tolerance: int = 1) -> Tensor:
    """Fraction of matches within ``tolerance`` cells of the geometric truth.

    Counts only query cells whose centre lies in the key view (``valid``);
    a match is correct when its Chebyshev distance on the key grid to the
    covering cell is at most ``tolerance`` (1: the cell or one of its 8
    neighbours, which absorbs the rounding of a point to a stride-32 cell).

    Args:
        ind (Tensor): ``(N, S_q)`` predicted key cells (e.g. feature argmax).
        gt_ind (Tensor): ``(N, S_q)`` key cells from
            :func:`geometric_correspondence`.
        valid (Tensor): ``(N, S_q)`` bool, which query cells to count.
        key_grid_size (int | Sequence[int]): The key grid.
        tolerance (int): Defaults to 1.

    Returns:
        Tensor: float scalar in ``[0, 1]``; NaN when no query cell is valid.
    """
    if not ind.shape == gt_ind.shape == valid.shape:
        raise ValueError(f'ind {tuple(ind.shape)}, gt_ind '
                         f'{tuple(gt_ind.shape)} and valid '
                         f'{tuple(valid.shape)} must have the same shape')
    correct = chebyshev_distance(ind, gt_ind, key_grid_size) <= tolerance
    valid = valid.to(torch.bool)
    n_valid = valid.sum()
    return (correct & valid).sum().float() / n_valid.float()


@dataclass
class DenseMatches:
    """Feature matches between two views, scored against the crop geometry.

    Built by :func:`match_views`; all tensors are batched over ``N`` pairs.

    Attributes:
        sim (Tensor): ``(N, S_q, S_k)`` cosine similarity of backbone cells.
        ind (Tensor): ``(N, S_q)`` argmax key cell of each query cell.
        score (Tensor): ``(N, S_q)`` its similarity.
        mutual (Tensor): ``(N, S_q)`` bool, query and key cell are each
            other's best match.
        gt_ind (Tensor): ``(N, S_q)`` key cell covering the same image point.
        valid (Tensor): ``(N, S_q)`` bool, the query cell lies in the key view.
        correct (Tensor): ``(N, S_q)`` bool, ``valid`` and ``ind`` within
            ``tolerance`` cells of ``gt_ind``.
        grid_size (tuple[int, int]): ``(S_h, S_w)`` of the query grid.
        key_grid_size (tuple[int, int]): ``(S_h, S_w)`` of the key grid.
        tolerance (int): Chebyshev radius used for ``correct``.
    """
    sim: Tensor
    ind: Tensor
    score: Tensor
    mutual: Tensor
    gt_ind: Tensor
    valid: Tensor
    correct: Tensor
    grid_size: Tuple[int, int]
    key_grid_size: Tuple[int, int]
    tolerance: int

    def accuracy(self) -> Tensor:
        """Argmax accuracy over overlapping query cells (NaN if none)."""
        return correspondence_accuracy(self.ind, self.gt_ind, self.valid,
                                       self.key_grid_size, self.tolerance)

    def kept(self, threshold: float) -> Tensor:
        """``(N, S_q)`` bool: mutual best matches with similarity > threshold
        (the DenseCL authors' rule for showing correspondences)."""
        return self.mutual & (self.score > threshold)

    def precision(self, threshold: float) -> Tensor:
        """Fraction of :meth:`kept` matches that are correct (NaN if none)."""
        kept = self.kept(threshold)
        return (self.correct & kept).sum().float() / kept.sum().float()


@torch.no_grad()
def match_views(q_b: Tensor, k_b: Tensor, q_bbox: Tensor, q_flip: Tensor,
                k_bbox: Tensor, k_flip: Tensor,
                tolerance: int = 1) -> DenseMatches:
    """Match backbone cells by cosine argmax and score them by geometry.

    Args:
        q_b (Tensor): ``(N, C, S_h, S_w)`` query-view backbone features.
        k_b (Tensor): ``(N, C, Sk_h, Sk_w)`` key-view backbone features.
        q_bbox (Tensor): ``(N, 4)`` query crop boxes ``(x1, y1, x2, y2)``.
        q_flip (Tensor): ``(N,)`` bool.
        k_bbox (Tensor): ``(N, 4)`` key crop boxes.
        k_flip (Tensor): ``(N,)`` bool.
        tolerance (int): Chebyshev radius of a correct match. Defaults to 1.

    Returns:
        DenseMatches: the matches and their geometric truth.
    """
    if q_b.dim() != 4 or k_b.dim() != 4:
        raise ValueError(f'q_b and k_b must be (N, C, H, W) feature maps, got '
                         f'{tuple(q_b.shape)} and {tuple(k_b.shape)}')
    grid, key_grid = tuple(q_b.shape[2:]), tuple(k_b.shape[2:])
    sim = cosine_similarity_grid(q_b.float(), k_b.float())  # (N, S_q, S_k)
    ind, score, mutual = mutual_best_matches(sim)  # (N, S_q) each
    gt_ind, valid = geometric_correspondence(
        q_bbox.to(q_b.device), q_flip.to(q_b.device),
        k_bbox.to(q_b.device), k_flip.to(q_b.device), grid, key_grid)
    correct = valid & (chebyshev_distance(ind, gt_ind, key_grid) <= tolerance)
    return DenseMatches(sim, ind, score, mutual, gt_ind, valid, correct,
                        grid, key_grid, tolerance)


#: one view's crop geometry: ``([x1, y1, x2, y2], flip)`` in loaded-image
#: pixels (``docs/architecture.md``)
ViewGeometry = Tuple[List[float], bool]


@torch.no_grad()
def backbone_c5(model: nn.Module, packed: Dict[str, Any],
                views: Sequence[int] = (0, 1)) -> List[Tensor]:
    """The matching features of views of one packed sample.

    The views go through the model's data preprocessor (normalisation,
    channel order), then ``model.backbone``; its last output is C5. A model
    that matches on other features than raw C5 (``DenseCL`` pools them to the
    neck's ``num_grid`` when set) says so with ``cell_features``, which is
    applied.

    Args:
        model (nn.Module): A DenseCL / MoCo v2 model (``backbone`` and
            ``data_preprocessor``).
        packed (dict): One packed sample (``PackSelfSupInputs``):
            ``{'inputs': [uint8 (3, H, W) per view], 'data_samples': ...}``.
        views (Sequence[int]): Which views. Defaults to (0, 1).

    Returns:
        list[Tensor]: one ``(1, C, S_h, S_w)`` map per view.
    """
    from mmengine.dataset import pseudo_collate
    data = model.data_preprocessor(pseudo_collate([packed]), False)
    maps = []
    for v in views:
        x_b = last_feature_map(model.backbone(data['inputs'][v]),
                               type(model).__name__)  # (1, C, H, W)
        if hasattr(model, 'cell_features'):
            x_b = model.cell_features(x_b)  # (1, C, S_h, S_w)
        maps.append(x_b)
    return maps


@torch.no_grad()
def match_packed_views(model: nn.Module, packed: Dict[str, Any]
                       ) -> Tuple[DenseMatches,
                                  Tuple[ViewGeometry, ViewGeometry]]:
    """Views 0 and 1 of one packed sample: their C5 cells matched and scored.

    :func:`backbone_c5` (in eval mode: one image is a batch of one for
    BatchNorm; the model's mode is restored after) -> the views' recorded
    geometry -> :func:`match_views`.

    Args:
        model (nn.Module): A DenseCL / MoCo v2 model.
        packed (dict): One packed sample of two or more views, with their
            geometry (``views``) in the data sample's metainfo.

    Returns:
        tuple[DenseMatches, tuple[ViewGeometry, ViewGeometry]]: The matches
        (a batch of one) and each view's ``([x1, y1, x2, y2], flip)``.
    """
    was_training = model.training
    model.eval()
    try:
        q_b, k_b = backbone_c5(model, packed)  # (1, C, S_h, S_w) each
    finally:
        model.train(was_training)
    (q_bbox, q_flip), (k_bbox, k_flip) = (
        views_geometry([packed['data_samples']], v) for v in (0, 1))
    matches = match_views(q_b, k_b, q_bbox, q_flip, k_bbox, k_flip)
    views = ((q_bbox[0].tolist(), bool(q_flip[0])),
             (k_bbox[0].tolist(), bool(k_flip[0])))
    return matches, views
