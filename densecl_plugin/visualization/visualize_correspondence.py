# Copyright (c) densecl_plugin contributors. All rights reserved.
"""See DenseCL's dense correspondences on one image, end to end.

:func:`visualize_correspondence` builds the model from a config (random init
or a checkpoint), makes two augmented views of one image with the config's
train pipeline (``MultiView``), computes backbone C5 features, matches cells
by cosine similarity, scores the matches against the crop geometry the view
transforms recorded, and writes two PNGs and a JSON summary. The CLI is
``tools/analysis/visualize_correspondence.py``.
"""
import contextlib
import json
import os
import os.path as osp
import random
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.config import Config
from torch import Tensor, nn

from densecl_plugin.models.utils.correspondence import (DenseMatches,
                                                        match_views,
                                                        views_geometry)
from densecl_plugin.visualization.correspondence_figures import (
    default_cells, draw_matches, draw_similarity_maps, save_png, to_rgb_image)

#: CHECKPOINT values meaning "no checkpoint, the config's initialisation"
RANDOM_INIT = ('none', 'random')


def load_config(config: Union[str, Config],
                cfg_options: Optional[dict] = None) -> Config:
    """Read a config file (or take a :class:`Config`) and merge overrides."""
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def _scope(cfg: Config):
    """Build inside the config's default scope (ours when unset)."""
    from mmengine.registry import DefaultScope
    return DefaultScope.overwrite_default_scope(
        cfg.get('default_scope', 'densecl_plugin'))


def build_model(cfg: Config, checkpoint: Optional[str] = None,
                device: str = 'cpu') -> nn.Module:
    """Build ``cfg.model`` in eval mode, randomly initialised or loaded.

    Args:
        cfg (Config): A config with ``model`` (and optionally a top-level
            ``data_preprocessor``, merged in as the Runner does).
        checkpoint (str, optional): A checkpoint file; None, ``'none'`` or
            ``'random'`` keep the config's initialisation
            (``init_weights()``). Defaults to None.
        device (str): Defaults to ``'cpu'``.

    Returns:
        nn.Module: the model.
    """
    from densecl_plugin.registry import MODELS
    model_cfg = cfg.model.copy()
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    with _scope(cfg):
        model = MODELS.build(model_cfg)
    if checkpoint is None or str(checkpoint).lower() in RANDOM_INIT:
        model.init_weights()
    else:
        load_backbone_checkpoint(model, checkpoint)
    return model.to(device).eval()


def load_backbone_checkpoint(model: nn.Module, checkpoint: str) -> None:
    """Load a checkpoint into ``model``; every ``backbone.*`` key must load.

    Raises:
        FileNotFoundError: when ``checkpoint`` does not exist.
        KeyError: when the checkpoint lacks some of the model's backbone
            weights (e.g. a backbone-only file with its prefix stripped).
    """
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(
            f'checkpoint {checkpoint!r} does not exist; pass a file written '
            f'by the Runner, or one of {RANDOM_INIT} for a random init')
    from mmengine.runner.checkpoint import _load_checkpoint
    ckpt = _load_checkpoint(checkpoint, map_location='cpu')
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else ckpt
    state = {k[len('module.'):] if k.startswith('module.') else k: v
             for k, v in state.items()}
    missing, _ = model.load_state_dict(state, strict=False)
    missing_backbone = [k for k in missing if k.startswith('backbone.')]
    if missing_backbone:
        raise KeyError(
            f'checkpoint {checkpoint!r} lacks {len(missing_backbone)} '
            f'backbone weights of the model, e.g. {missing_backbone[:3]}; '
            f'expected the full state dict of the pre-training model (keys '
            f'"backbone.*")')


@contextlib.contextmanager
def seeded(seed: int):
    """Seed ``random``, ``numpy`` and ``torch`` (CPU) inside the block and
    restore their previous states after it, so that drawing views in the
    middle of training leaves the training's random streams untouched."""
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])


def make_views(source: Union[Config, Callable], image: str,
               seed: int = 0) -> Dict[str, Any]:
    """Run a train pipeline (``MultiView``) on one image.

    Args:
        source (Config | Callable): A config, whose
            ``train_dataloader.dataset.pipeline`` (or ``train_pipeline``) is
            built in the config's scope; or an already built pipeline (e.g.
            the Runner's ``train_dataloader.dataset.pipeline``).
        image (str): Path to the image.
        seed (int): Seeds ``random``, ``numpy`` and ``torch`` for the
            pipeline, so the views are reproducible; the global random states
            are restored afterwards (see :func:`seeded`). Defaults to 0.

    Returns:
        dict: the packed sample, ``{'inputs': [uint8 (3, H, W) per view],
        'data_samples': ...}``.
    """
    from mmengine.dataset import Compose
    if not osp.isfile(image):
        raise FileNotFoundError(f'image {image!r} does not exist')
    if isinstance(source, Config):
        pipeline = source.get('train_dataloader', {}).get('dataset', {}).get(
            'pipeline', source.get('train_pipeline'))
        if pipeline is None:
            raise KeyError('the config has neither train_dataloader.dataset.'
                           'pipeline nor train_pipeline: expected the '
                           'LoadImageFromFile -> MultiView -> '
                           'PackSelfSupInputs train pipeline')
        with _scope(source):
            pipeline = Compose(pipeline)
    elif callable(source):
        pipeline = source
    else:
        raise TypeError(f'make_views needs a Config or a built pipeline, got '
                        f'{type(source).__name__}')
    with seeded(seed):
        packed = pipeline(dict(img_path=image))
    if packed is None or len(packed.get('inputs', ())) < 2:
        raise ValueError(f'the train pipeline made '
                         f'{len((packed or {}).get("inputs", ()))} views of '
                         f'{image!r}: expected MultiView with 2 or more views')
    return packed


@torch.no_grad()
def backbone_c5(model: nn.Module, packed: Dict[str, Any],
                views: Sequence[int] = (0, 1)) -> List[Tensor]:
    """The matching features of views of one packed sample.

    The views go through the model's data preprocessor (normalisation,
    channel order), then ``model.backbone``; its last output is C5. A model
    that matches on other features than raw C5 (``DenseCL`` pools them to the
    neck's ``num_grid`` when set) says so with ``cell_features``, which is
    applied.

    Returns:
        list[Tensor]: one ``(1, C, S_h, S_w)`` map per view.
    """
    from mmengine.dataset import pseudo_collate

    from densecl_plugin.models.utils.feature_map import last_feature_map
    data = model.data_preprocessor(pseudo_collate([packed]), False)
    maps = []
    for v in views:
        x_b = last_feature_map(model.backbone(data['inputs'][v]),
                               type(model).__name__)  # (1, C, H, W)
        if hasattr(model, 'cell_features'):
            x_b = model.cell_features(x_b)  # (1, C, S_h, S_w)
        maps.append(x_b)
    return maps


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
    packed = make_views(cfg, image, seed)
    q_b, k_b = backbone_c5(model, packed)  # (1, C, S_h, S_w) each
    q_bbox, q_flip = views_geometry([packed['data_samples']], 0)
    k_bbox, k_flip = views_geometry([packed['data_samples']], 1)
    matches: DenseMatches = match_views(q_b, k_b, q_bbox, q_flip, k_bbox,
                                        k_flip)
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
    q_geom = (q_bbox[0].tolist(), bool(q_flip[0]))
    k_geom = (k_bbox[0].tolist(), bool(k_flip[0]))
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
