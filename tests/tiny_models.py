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
import itertools
import time
from typing import Any, Dict, Optional

import torch
from torch.utils.data import Dataset

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


_RUNS = itertools.count()


def view_pipeline(size: int) -> list:
    """``LoadImageFromFile -> MultiView(2 x [crop to size, flip]) ->
    PackSelfSupInputs``: real views of real images, few transforms."""
    view = [dict(type='RandomResizedCrop', size=size, scale=(0.2, 1.)),
            dict(type='RandomFlip', prob=0.5)]
    return [dict(type='LoadImageFromFile'),
            dict(type='MultiView', num_views=2, transforms=[view]),
            dict(type='PackSelfSupInputs', meta_keys=('img_path', ))]


def write_tiny_config(path: str, model: Dict[str, Any],
                      pipeline: Optional[list] = None) -> str:
    """Write a config file of ``model`` in the plugin's scope (and, given
    ``pipeline``, a train data set with it, as the inference helpers read
    the views from it); returns ``path``."""
    with open(path, 'w') as f:
        f.write(f'default_scope = "densecl_plugin"\nmodel = {model!r}\n')
        if pipeline is not None:
            f.write(f'train_dataloader = dict(dataset=dict('
                    f'pipeline={pipeline!r}))\n')
    return path


class RandomTwoViews(Dataset):
    """``n`` random two-view samples of ``size`` px, already in the model's
    input format (float tensors; a model without a data preprocessor).
    Sample ``i`` is the same in every run (seeded by ``i``)."""

    def __init__(self, n: int = 16, size: int = 32) -> None:
        self.n, self.size = n, size

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        g = torch.Generator().manual_seed(i)
        return dict(inputs=[torch.randn(3, self.size, self.size, generator=g)
                            for _ in range(2)])


def tiny_runner(work_dir: str, model: Dict[str, Any], *,
                image_dir: Optional[str] = None,
                dataset: Optional[Any] = None, view_size: int = 32,
                batch_size: int = 4, max_iters: int = 4,
                optimizer: Optional[Dict[str, Any]] = None,
                custom_hooks: Any = (),
                checkpoint_interval: Optional[int] = None,
                log_interval: int = 1, seed: Optional[int] = 0,
                **overrides: Any):
    """The one tiny pre-training ``Runner`` of the tests.

    Either real views of the images in ``image_dir``
    (``UnlabeledImageDataset`` with :func:`view_pipeline`, shuffled by an
    ``InfiniteSampler``) or ``dataset`` (e.g. :class:`RandomTwoViews`, in
    order); SGD, ``IterBasedTrainLoop``, gloo, the plugin's scope.

    Args:
        work_dir (str): the run's work dir.
        model (dict): e.g. :func:`tiny_model_cfg`.
        image_dir (str, optional): a folder of images.
        dataset (optional): a data set object instead of ``image_dir``.
        view_size (int): the views' side with ``image_dir``. Defaults to 32.
        batch_size (int): Defaults to 4.
        max_iters (int): Defaults to 4.
        optimizer (dict, optional): Defaults to SGD with lr 0.01.
        custom_hooks (Sequence): hooks or hook configs. Defaults to none.
        checkpoint_interval (int, optional): save every this many
            iterations. Defaults to None (no checkpoints).
        log_interval (int): ``LoggerHook`` interval. Defaults to 1.
        seed (int, optional): ``randomness.seed`` (None: a random one).
            Defaults to 0.
        **overrides: other ``Runner`` arguments (``resume``,
            ``visualizer``, ``log_level``, ...).

    Each runner gets an experiment name of its own: MMEngine names the
    visualizer and the message hub after it (by default the start second),
    and two runs started within one second would share them (the second
    run's scalars went to the first one's work dir).

    Returns:
        Runner: built, not trained.
    """
    from mmengine.runner import Runner
    if (image_dir is None) == (dataset is None):
        raise ValueError('give exactly one of image_dir and dataset')
    if image_dir is not None:
        dataset = dict(type='UnlabeledImageDataset', data_root=image_dir,
                       pipeline=view_pipeline(view_size))
        sampler = dict(type='InfiniteSampler', shuffle=True)
    else:
        sampler = dict(type='DefaultSampler', shuffle=False)
    checkpoint = None if checkpoint_interval is None else dict(
        type='CheckpointHook', by_epoch=False, interval=checkpoint_interval)
    kwargs = dict(
        model=model, work_dir=work_dir,
        train_dataloader=dict(dataset=dataset, batch_size=batch_size,
                              num_workers=0, sampler=sampler,
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=optimizer or dict(type='SGD', lr=0.01)),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters),
        default_hooks=dict(checkpoint=checkpoint,
                           logger=dict(type='LoggerHook',
                                       interval=log_interval)),
        custom_hooks=list(custom_hooks),
        log_processor=dict(by_epoch=False, window_size=1),
        default_scope='densecl_plugin',
        randomness=dict(seed=seed),
        env_cfg=dict(dist_cfg=dict(backend='gloo')), log_level='WARNING',
        experiment_name=f'tiny_runner_{next(_RUNS)}_{time.time_ns()}')
    kwargs.update(overrides)
    return Runner(**kwargs)
