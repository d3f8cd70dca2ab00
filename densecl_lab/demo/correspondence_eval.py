# Copyright (c) densecl_plugin contributors. All rights reserved.
"""How often a backbone's dense matches agree with the crop geometry, on
held-out views.

For each held-out image and seed, the pre-training config's own view
pipeline (``MultiView``: random resized crop, flip, colour jitter, ...) makes
two views at ``view_size`` px; backbone C5 cells of view 1 are matched to
cells of view 2 by cosine argmax and scored with
:func:`~densecl_plugin.models.utils.correspondence.correspondence_accuracy`:
the fraction of query cells (that view 2 also sees) whose match is within
one cell of the cell covering the same image point.
"""
import copy
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from torch import nn

from densecl_plugin.models.utils.correspondence import correspondence_accuracy
from densecl_plugin.utils.config_search import find_by_type
from .demo_progress_hook import progress_bar


def with_view_size(cfg: Config, size: int) -> Config:
    """A copy of a pre-training config whose views are ``size`` px.

    Every ``RandomResizedCrop`` in ``train_dataloader.dataset.pipeline``
    (inside ``MultiView``) gets ``size``.

    Raises:
        KeyError: when the pipeline has no ``RandomResizedCrop``.
    """
    cfg = copy.deepcopy(cfg)
    found = find_by_type(cfg.train_dataloader.dataset.pipeline,
                         'RandomResizedCrop')
    for t in found:
        t['size'] = size
    if not found:
        raise KeyError(f'{cfg.filename}: train_dataloader.dataset.pipeline '
                       'has no RandomResizedCrop to set the view size of')
    return cfg


@torch.no_grad()
def held_out_correspondence(model: nn.Module, cfg: Config,
                            images: Sequence[str], seeds: Sequence[int],
                            view_size: int = 192,
                            desc: Optional[str] = None) -> Dict[str, Any]:
    """Argmax correspondence accuracy of ``model``'s backbone on held-out
    view pairs.

    Args:
        model (nn.Module): a DenseCL / MoCo v2 model (``backbone`` and
            ``data_preprocessor``), in eval mode.
        cfg (Config): its pre-training config (for the view pipeline).
        images (Sequence[str]): held-out image files.
        seeds (Sequence[int]): one view pair per image and seed.
        view_size (int): view side in pixels; the C5 grid is
            ``view_size / 32`` cells a side. Defaults to 192 (6 x 6).
        desc (str, optional): show a progress bar with this label.
            Defaults to None (no bar).

    Returns:
        dict: ``accuracy`` (over all overlapping query cells of all pairs),
        ``same_cell_accuracy`` (the accuracy of matching every query cell to
        the key cell at the same grid position, a feature-free baseline that
        is high for pairs of similar unflipped crops), ``num_pairs``,
        ``num_cells`` (overlapping query cells counted), ``grid`` and
        ``view_size``.
    """
    from densecl_plugin.apis.inference import match_image_views
    if not images or not seeds:
        raise ValueError('held_out_correspondence needs at least one image '
                         f'and one seed, got {len(images)} images and '
                         f'{len(seeds)} seeds')
    cfg = with_view_size(cfg, view_size)
    model.eval()
    bar = progress_bar(len(images) * len(seeds), desc or '', desc is not None)
    inds, gt_inds, valids = [], [], []
    key_grid = None
    for image in images:
        for seed in seeds:
            matches = match_image_views(model, cfg, image, seed).matches
            if key_grid is not None and matches.key_grid_size != key_grid:
                raise ValueError(f'{image}: grid {matches.key_grid_size} '
                                 f'differs from {key_grid}; views must all '
                                 'be square and of one size')
            key_grid = matches.key_grid_size
            inds.append(matches.ind)  # (1, S_q)
            gt_inds.append(matches.gt_ind)  # (1, S_q)
            valids.append(matches.valid)  # (1, S_q)
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    ind = torch.cat(inds)  # (P, S_q)
    gt_ind = torch.cat(gt_inds)  # (P, S_q)
    valid = torch.cat(valids)  # (P, S_q)
    accuracy = correspondence_accuracy(ind, gt_ind, valid, key_grid)
    # the same pairs matched without features: query cell i -> key cell i
    same_cell = torch.arange(ind.shape[1]).expand_as(ind)  # (P, S_q)
    same_cell_accuracy = correspondence_accuracy(same_cell, gt_ind, valid,
                                                 key_grid)
    return dict(accuracy=float(accuracy),
                same_cell_accuracy=float(same_cell_accuracy),
                num_pairs=int(ind.shape[0]), num_cells=int(valid.sum()),
                grid=list(key_grid), view_size=view_size)


def checkpoint_correspondence(cfg: Config, checkpoint: Optional[str],
                              images: Sequence[str], seeds: Sequence[int],
                              view_size: int = 192,
                              desc: Optional[str] = None
                              ) -> Tuple[nn.Module, Dict[str, Any]]:
    """:func:`held_out_correspondence` of a checkpoint of ``cfg``'s model.

    Args:
        cfg (Config): the pre-training config the checkpoint belongs to.
        checkpoint (str, optional): a full pre-training state dict, or
            None / ``'random'`` for the config's initialisation (see
            :func:`~densecl_plugin.apis.inference.build_model`).
        images (Sequence[str]): held-out image files.
        seeds (Sequence[int]): one view pair per image and seed.
        view_size (int): view side in pixels. Defaults to 192.
        desc (str, optional): progress bar label. Defaults to None (no bar).

    Returns:
        tuple[nn.Module, dict]: the built model (in eval mode) and the
        result of :func:`held_out_correspondence` with ``checkpoint``.
    """
    from densecl_plugin.apis.inference import build_model
    model = build_model(cfg, checkpoint)
    result = held_out_correspondence(model, cfg, images, seeds, view_size,
                                     desc=desc)
    result['checkpoint'] = checkpoint
    return model, result


def chance_accuracy(grid: Sequence[int], tolerance: int = 1) -> float:
    """Accuracy of a matcher that picks a key cell uniformly at random,
    averaged over true cells: the mean share of a ``grid`` whose Chebyshev
    distance to a cell is at most ``tolerance``.

    Args:
        grid (Sequence[int]): ``(S_h, S_w)``.
        tolerance (int): Defaults to 1.

    Returns:
        float: e.g. (16 / 6)^2 / 36 = 0.198 for a 6 x 6 grid and
        tolerance 1.
    """
    S_h, S_w = grid

    def span(i: int, n: int) -> int:
        return min(i + tolerance, n - 1) - max(i - tolerance, 0) + 1

    rows: List[int] = [span(r, S_h) for r in range(S_h)]
    cols: List[int] = [span(c, S_w) for c in range(S_w)]
    return (sum(rows) / S_h) * (sum(cols) / S_w) / (S_h * S_w)
