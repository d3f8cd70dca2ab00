# Copyright (c) densecl_plugin contributors. All rights reserved.
"""See DenseCL's dense correspondences on one image, end to end.

:func:`visualize_correspondence` builds the model from a config (random init
or a checkpoint), makes two augmented views of one image with the config's
train pipeline (``MultiView``), computes backbone C5 features, matches cells
by cosine similarity, scores the matches against the crop geometry the view
transforms recorded (all four steps:
:func:`~densecl_plugin.apis.inference.match_image_views`), and writes two
PNGs and a JSON summary. The CLI is
``tools/analysis/visualize_correspondence.py``.
"""
import json
import os
import os.path as osp
from typing import Any, Dict, Optional, Sequence, Tuple, Union

from mmengine.config import Config
from torch import Tensor, nn

from densecl_plugin.apis.inference import (build_model, load_config,
                                           match_image_views)
from densecl_plugin.visualization.correspondence_figures import (
    default_cells, draw_matches, draw_similarity_maps, save_png, to_rgb_image)


def visualize_correspondence(config: Union[str, Config],
                             checkpoint: Optional[str], image: str,
                             out_dir: str, seed: int = 0,
                             threshold: float = 0.9,
                             cells: Optional[Sequence[Tuple[int, int]]] = None,
                             device: str = 'cpu',
                             cfg_options: Optional[dict] = None,
                             model: Optional[nn.Module] = None,
                             prefix: str = '') -> Dict[str, Any]:
    """Draw and measure DenseCL's matches between two views of ``image``.

    Writes ``{prefix}matches.png`` (mutual best matches above ``threshold``,
    wrong ones by geometry in red), ``{prefix}similarity.png`` (heat maps for
    ``cells``) and ``{prefix}summary.json`` into ``out_dir``.

    Args:
        config (str | Config): The pre-training config.
        checkpoint (str, optional): Its checkpoint, or None / ``'none'`` /
            ``'random'`` for the config's random initialisation.
        image (str): An image file.
        out_dir (str): Where to write.
        seed (int): Seed of the augmentation. Defaults to 0.
        threshold (float): Similarity above which mutual best matches are
            drawn. Defaults to 0.9.
        cells (Sequence[tuple[int, int]], optional): ``(row, col)`` query
            cells for heat maps. Defaults to None (3 overlapping cells).
        device (str): Defaults to ``'cpu'``.
        cfg_options (dict, optional): Overrides merged into the config.
            Defaults to None.
        model (nn.Module, optional): An already built model, to skip
            building one from ``config`` / ``checkpoint``. Defaults to None.
        prefix (str): File name prefix. Defaults to ''.

    Returns:
        dict: the summary written to ``summary.json``: overlap and accuracy
        figures, the views' geometry and the written paths.
    """
    cfg = load_config(config, cfg_options)
    if model is None:
        model = build_model(cfg, checkpoint, device)
    model.eval()
    packed, matches, (q_geom, k_geom) = match_image_views(model, cfg, image,
                                                          seed)
    q_img, k_img = (to_rgb_image(v) for v in packed['inputs'][:2])
    S_h, S_w = matches.grid_size
    if cells is None:
        flat_cells = default_cells(matches)
    else:
        flat_cells = []
        for r, c in cells:
            if not (0 <= r < S_h and 0 <= c < S_w):
                raise ValueError(f'cell (row {r}, col {c}) is outside the '
                                 f'{S_h} x {S_w} feature grid')
            flat_cells.append(r * S_w + c)
    os.makedirs(out_dir, exist_ok=True)
    paths = dict(
        matches=save_png(draw_matches(q_img, k_img, matches, q_geom, k_geom,
                                      threshold),
                         osp.join(out_dir, f'{prefix}matches.png')),
        similarity=save_png(draw_similarity_maps(q_img, k_img, matches,
                                                 flat_cells),
                            osp.join(out_dir, f'{prefix}similarity.png')))
    kept = matches.kept(threshold)
    summary = dict(
        image=image, checkpoint=checkpoint, seed=seed, threshold=threshold,
        grid=[S_h, S_w], key_grid=list(matches.key_grid_size),
        views=[dict(crop_bbox=q_geom[0], flip=q_geom[1]),
               dict(crop_bbox=k_geom[0], flip=k_geom[1])],
        num_cells=S_h * S_w,
        num_overlapping=int(matches.valid.sum()),
        argmax_accuracy=_number(matches.accuracy()),
        num_mutual_above_threshold=int(kept.sum()),
        num_mutual_above_threshold_correct=int((kept & matches.correct).sum()),
        mutual_precision=_number(matches.precision(threshold)),
        heatmap_cells=[list(divmod(c, S_w)) for c in flat_cells],
        files=paths)
    summary_path = osp.join(out_dir, f'{prefix}summary.json')
    with open(summary_path, 'w') as f:
        json.dump(summary, f, indent=2)
    summary['files']['summary'] = summary_path
    return summary


def _number(x: Tensor) -> Optional[float]:
    """A scalar tensor as a float, None for NaN (JSON has no NaN)."""
    value = float(x)
    return None if value != value else value
