# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Shrink a real benchmark config to a few CPU iterations on a tiny data set.

:func:`make_smoke_config` keeps everything that defines the benchmark (model,
heads, preprocessing, pipelines, datasets, evaluator) and changes only sizes
and lengths: the data root, image scales and crops, RoI / proposal counts,
the loop (``max_iters`` iterations, then one validation), workers and
checkpoint saving. The tests use it to run every layout end to end (test
support, not product code: no tool or demo stage calls it). Import it as
``from test_downstream.smoke import make_smoke_config`` (``tests/`` is on
``sys.path``).
"""
import copy
import os.path as osp
from typing import Any, Optional, Sequence, Tuple, Union

from mmengine.config import Config, ConfigDict

#: pipeline transforms whose sizes :func:`make_smoke_config` scales
_SCALED = ('Resize', 'RandomResize', 'RandomChoiceResize')


def _scale_pair(pair: Sequence[int], factor: float) -> Tuple[int, int]:
    return tuple(max(1, round(v * factor)) for v in pair)


def _shrink_pipeline(pipeline: list, img_size: int, crop_size: int) -> None:
    """Scale resizes so the short side is ``img_size``; crops to ``crop``."""
    for t in pipeline:
        kind = t.get('type')
        if kind in _SCALED:
            scales = t.get('scales') or [t['scale']]
            factor = img_size / max(min(s) for s in scales)
            if 'scales' in t:
                t['scales'] = [_scale_pair(s, factor) for s in scales]
            else:
                t['scale'] = _scale_pair(t['scale'], factor)
        elif kind == 'RandomCrop':
            t['crop_size'] = (crop_size, crop_size)
        elif kind == 'Pad' and 'size' in t:
            t['size'] = (crop_size, crop_size)


def _leaf_datasets(dataset: dict):
    """The datasets with a pipeline inside Concat / Repeat wrappers."""
    if 'datasets' in dataset:
        for d in dataset['datasets']:
            yield from _leaf_datasets(d)
    elif 'dataset' in dataset:
        yield from _leaf_datasets(dataset['dataset'])
    else:
        yield dataset


def _set_existing(cfg: dict, path: str, value: Any) -> None:
    """Set ``cfg[a][b]... = value`` if every key on ``path`` exists."""
    *parents, last = path.split('.')
    node = cfg
    for key in parents:
        if not isinstance(node, dict) or key not in node:
            return
        node = node[key]
    if isinstance(node, dict) and last in node:
        node[last] = value


def make_smoke_config(config: Union[str, Config],
                      checkpoint: str,
                      data_root: str,
                      work_dir: str,
                      classes: Optional[Sequence[str]] = None,
                      max_iters: int = 2,
                      batch_size: int = 2,
                      img_size: int = 128,
                      crop_size: int = 64,
                      num_rois: int = 32,
                      lr_scale: Optional[float] = None) -> Config:
    """A copy of a benchmark config sized for a few CPU iterations.

    Args:
        config (str | Config): a benchmark config (file or loaded).
        checkpoint (str): the pre-trained checkpoint
            (``model.init_cfg.checkpoint``).
        data_root (str): the tiny data set's root (what the config's
            ``data_root`` means, e.g. ``.../VOCdevkit/`` for VOC detection).
        work_dir (str): the run's work dir.
        classes (Sequence[str], optional): detection classes of the tiny set
            (``metainfo.classes`` and the heads' ``num_classes``); None keeps
            the config's. Defaults to None.
        max_iters (int): training iterations before the one validation.
            Defaults to 2.
        batch_size (int): training batch size. Defaults to 2.
        img_size (int): the short side that the largest resize scale maps
            to. Defaults to 128.
        crop_size (int): segmentation crop side. Defaults to 64.
        num_rois (int): sampled RoIs per image, test proposals and
            detections kept per image (the configs use 512 / 1000 / 100).
            Defaults to 32.
        lr_scale (float, optional): multiply the optimizer's lr by this.
            Defaults to None: the linear scaling rule, ``batch_size / 16``
            (both benchmark families train with 16 images per step, except
            Cityscapes with 8).

    Returns:
        Config: the changed copy.
    """
    cfg = copy.deepcopy(config) if isinstance(config, Config) \
        else Config.fromfile(config)
    cfg.work_dir = work_dir
    cfg.launcher = 'none'
    cfg.model.init_cfg.checkpoint = checkpoint
    cfg.train_cfg = ConfigDict(type='IterBasedTrainLoop', max_iters=max_iters,
                               val_interval=max_iters)
    cfg.param_scheduler = [dict(type='LinearLR', start_factor=0.1,
                                by_epoch=False, begin=0, end=max_iters)]
    if lr_scale is None:
        base = cfg.get('auto_scale_lr', {}).get('base_batch_size', 16)
        lr_scale = batch_size / base
    cfg.optim_wrapper.optimizer.lr *= lr_scale
    cfg.default_hooks.checkpoint = None  # no 100+ MB files per test run
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.log_processor = dict(by_epoch=False)
    cfg.randomness = dict(seed=0)
    if cfg.get('visualizer'):
        # mmdet / mmseg name their visualizer 'visualizer'; MMEngine keeps
        # one instance per name per process, so a second run in the same
        # process would log into the first run's work dir
        cfg.visualizer.name = f'visualizer_{osp.abspath(work_dir)}'
    cfg.pop('test_dataloader', None)
    cfg.pop('test_evaluator', None)
    cfg.pop('test_cfg', None)

    old_root = None
    for key in ('train_dataloader', 'val_dataloader'):
        loader = cfg[key]
        loader.num_workers = 0
        loader.persistent_workers = False
        if key == 'train_dataloader':
            loader.batch_size = batch_size
        for ds in _leaf_datasets(loader.dataset):
            old_root = ds.get('data_root', old_root)
            ds['data_root'] = data_root
            if classes is not None:
                ds['metainfo'] = dict(classes=tuple(classes))
            _shrink_pipeline(ds.get('pipeline', []), img_size, crop_size)
    evaluators = cfg.val_evaluator if isinstance(cfg.val_evaluator, list) \
        else [cfg.val_evaluator]
    for ev in evaluators:
        if ev.get('ann_file') and old_root:
            ev['ann_file'] = osp.join(data_root,
                                      osp.relpath(ev['ann_file'], old_root))

    model = cfg.model
    if classes is not None:
        _set_existing(model, 'roi_head.bbox_head.num_classes', len(classes))
        _set_existing(model, 'roi_head.mask_head.num_classes', len(classes))
    _set_existing(model, 'train_cfg.rpn_proposal.nms_pre', 8 * num_rois)
    _set_existing(model, 'train_cfg.rpn_proposal.max_per_img', 2 * num_rois)
    _set_existing(model, 'train_cfg.rcnn.sampler.num', num_rois)
    _set_existing(model, 'test_cfg.rpn.nms_pre', 8 * num_rois)
    _set_existing(model, 'test_cfg.rpn.max_per_img', num_rois)
    _set_existing(model, 'test_cfg.rcnn.max_per_img', num_rois)
    _set_existing(model, 'data_preprocessor.size', (crop_size, crop_size))
    if model.get('test_cfg', {}).get('mode') == 'slide':
        model.test_cfg.crop_size = (crop_size, crop_size)
        model.test_cfg.stride = (crop_size * 2 // 3, crop_size * 2 // 3)
    return cfg
