# Copyright (c) densecl_plugin contributors. All rights reserved.
"""A pre-trained model on views of one image: load it, make the views, read
its features and its dense matches.

:func:`build_model` builds a config's model (random init or a checkpoint,
:func:`load_backbone_checkpoint`); :func:`make_views` runs the config's train
pipeline (``MultiView``) on one image, seeded; :func:`backbone_c5` gives the
views' matching features and :func:`match_image_views` the whole sequence up
to the matches scored against the recorded crop geometry (the last two live
in :mod:`densecl_plugin.models.utils.correspondence`, with
``match_packed_views``, which ``CorrespondenceHook`` uses; ``seeded`` in
:mod:`densecl_plugin.utils.seeding`). The correspondence figure tool, the
demo's and the study's held-out evaluations and the study's linear probe
all use them.
"""
import logging
import os.path as osp
from typing import Any, Callable, Dict, NamedTuple, Optional, Tuple, Union

import torch
from mmengine.config import Config
from torch import nn

from densecl_plugin.models.utils.correspondence import (DenseMatches,
                                                        ViewGeometry,
                                                        backbone_c5,
                                                        match_packed_views)
from densecl_plugin.utils.seeding import seeded

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
        nn.Module: the model (``'auto'`` values: the checkpoint's queue
        length, no split BN; ``docs/auto_values.md``).
    """
    from densecl_plugin.registry import MODELS
    from densecl_plugin.utils.auto_values import resolve_inference_model
    model_cfg = cfg.model.copy()
    resolve_inference_model(model_cfg, None if checkpoint is None or str(
        checkpoint).lower() in RANDOM_INIT else checkpoint)
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

    :func:`make_views`, then
    :func:`~densecl_plugin.models.utils.correspondence.match_packed_views`
    (the C5 cells in eval mode, matched and scored against the views'
    recorded geometry).

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
    matches, views = match_packed_views(model, packed)
    return ImageViewMatches(packed, matches, views)


__all__ = ['ImageViewMatches', 'RANDOM_INIT', 'ViewGeometry', 'backbone_c5',
           'build_model', 'load_backbone_checkpoint', 'load_config',
           'make_views', 'match_image_views', 'quiet_init_weights', 'seeded']
