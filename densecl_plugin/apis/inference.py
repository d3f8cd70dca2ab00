# Copyright (c) densecl_plugin contributors. All rights reserved.
"""A pre-trained model on views of one image: load it, make the views, read
its features and its dense matches.

:func:`build_model` builds a config's model (random init or a checkpoint,
:func:`load_backbone_checkpoint`); :func:`make_views` runs the config's train
pipeline (``MultiView``) on one image, seeded; :func:`backbone_c5` gives the
views' matching features and :func:`match_image_views` the whole sequence up
to the matches scored against the recorded crop geometry. The correspondence
figure (:mod:`densecl_plugin.visualization`), ``CorrespondenceHook``, the
demo's and the study's held-out evaluations and the study's linear probe
all use them.
"""
import contextlib
import logging
import os.path as osp
import random
from typing import (Any, Callable, Dict, List, NamedTuple, Optional, Sequence,
                    Tuple, Union)

import numpy as np
import torch
from mmengine.config import Config
from torch import Tensor, nn

from densecl_plugin.models.utils.correspondence import (DenseMatches,
                                                        match_views,
                                                        views_geometry)

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
        quiet_init_weights(model)
    else:
        load_backbone_checkpoint(model, checkpoint)
    return model.to(device).eval()


def quiet_init_weights(model: nn.Module) -> None:
    """``model.init_weights()`` without MMEngine's per-parameter log lines
    (the current logger is raised to WARNING meanwhile)."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)


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


#: one view's crop geometry: ``([x1, y1, x2, y2], flip)`` in loaded-image
#: pixels (``docs/architecture.md``)
ViewGeometry = Tuple[List[float], bool]


class ImageViewMatches(NamedTuple):
    """What :func:`match_image_views` returns.

    Attributes:
        packed (dict): the packed sample of :func:`make_views` (the views'
            uint8 images and their data sample).
        matches (DenseMatches): view 0's cells matched to view 1's.
        views (tuple[ViewGeometry, ViewGeometry]): each view's
            ``([x1, y1, x2, y2], flip)``.
    """
    packed: Dict[str, Any]
    matches: DenseMatches
    views: Tuple[ViewGeometry, ViewGeometry]


@torch.no_grad()
def match_image_views(model: nn.Module, source: Union[Config, Callable],
                      image: str, seed: int = 0) -> ImageViewMatches:
    """Two views of ``image``, their C5 cells matched and scored.

    :func:`make_views` -> :func:`backbone_c5` (in eval mode: one image is a
    batch of one for BatchNorm; the model's mode is restored after) ->
    the views' recorded geometry -> :func:`match_views`.

    Args:
        model (nn.Module): a DenseCL / MoCo v2 model (``backbone`` and
            ``data_preprocessor``).
        source (Config | Callable): the train pipeline's source, see
            :func:`make_views`.
        image (str): Path to the image.
        seed (int): Seed of the views. Defaults to 0.

    Returns:
        ImageViewMatches: the packed views, the matches and the views'
        geometry.
    """
    packed = make_views(source, image, seed)
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
    return ImageViewMatches(packed, matches, views)
