# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Tiny pre-training model configs: the one place tests build them from.

``tests/`` is on ``sys.path`` (pytest puts the folder of the root
``conftest.py`` there), so any test can ``from tiny_models import ...``.

The backbone spells out the pre-training choices of
``configs/_base_/models/mocov2_r50.py`` (inherited by ``densecl_r50.py``):
train-mode BN, nothing frozen, no zero-init residual, so a tiny model trains
the way the real one does.
"""
import copy
from typing import Any, Dict, Optional

#: the algorithm -> its neck type
NECKS = {'DenseCL': 'DenseCLNeck', 'MoCoV2': 'MoCoV2Neck'}


def tiny_backbone(depth: int = 18, base_channels: int = 64, **overrides: Any) -> Dict[str, Any]:
    """An ``mmdet.ResNet`` config with the pre-training BN choices.

    Args:
        depth (int): ResNet depth. Defaults to 18.
        base_channels (int): stem width (the last stage has 8x, or 32x for
            bottleneck depths). Defaults to 64.
        **overrides: any other ``mmdet.ResNet`` argument (``norm_cfg``,
            ``norm_eval``, ``zero_init_residual`` ...).

    Returns:
        dict: the backbone config.
    """
    cfg = dict(type='mmdet.ResNet', depth=depth, base_channels=base_channels,
               out_indices=(3, ), norm_cfg=dict(type='BN'), norm_eval=False,
               zero_init_residual=False)
    cfg.update(overrides)
    return cfg


def backbone_channels(depth: int = 18, base_channels: int = 64) -> int:
    """The channels of the last ResNet stage."""
    return base_channels * 8 * (4 if depth >= 50 else 1)


def tiny_model_cfg(algo: str = 'DenseCL', depth: int = 18, base_channels: int = 64,
                   hid_channels: int = 32, feat_dim: int = 16, queue_len: int = 16,
                   backbone: Optional[dict] = None, neck: Optional[dict] = None,
                   **overrides: Any) -> Dict[str, Any]:
    """A small ``DenseCL`` / ``MoCoV2`` config on random-init ResNet.

    Args:
        algo (str): ``'DenseCL'`` or ``'MoCoV2'``. Defaults to ``'DenseCL'``.
        depth (int): ResNet depth. Defaults to 18.
        base_channels (int): ResNet stem width. Defaults to 64.
        hid_channels (int): the neck's hidden width. Defaults to 32.
        feat_dim (int): the embedding size D. Defaults to 16.
        queue_len (int): the queue length K. Defaults to 16.
        backbone (dict, optional): keys that update :func:`tiny_backbone`.
        neck (dict, optional): keys that update the neck config.
        **overrides: other algorithm arguments (``loss_lambda``, ``head``,
            ``momentum`` ...); ``data_preprocessor`` defaults to None (inputs
            already normalised float tensors).

    Returns:
        dict: a config for ``MODELS.build`` (a fresh copy each call).
    """
    if algo not in NECKS:
        raise ValueError(f'algo must be one of {sorted(NECKS)}, got {algo!r}')
    neck_cfg = dict(type=NECKS[algo], in_channels=backbone_channels(depth, base_channels),
                    hid_channels=hid_channels, out_channels=feat_dim)
    neck_cfg.update(neck or {})
    cfg = dict(type=algo, backbone=tiny_backbone(depth, base_channels, **(backbone or {})),
               neck=neck_cfg, queue_len=queue_len, feat_dim=feat_dim,
               data_preprocessor=None)
    cfg.update(overrides)
    return copy.deepcopy(cfg)


def build_tiny_model(algo: str = 'DenseCL', init: bool = True, **kwargs: Any):
    """``MODELS.build(tiny_model_cfg(algo, **kwargs))``, weights initialised.

    Args:
        algo (str): see :func:`tiny_model_cfg`. Defaults to ``'DenseCL'``.
        init (bool): call ``init_weights()``. Defaults to True.
        **kwargs: passed to :func:`tiny_model_cfg`.
    """
    import densecl_plugin.models  # noqa: F401  (registers the modules)
    from densecl_plugin.registry import MODELS
    model = MODELS.build(tiny_model_cfg(algo, **kwargs))
    if init:
        model.init_weights()
    return model
