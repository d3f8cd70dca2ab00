# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Every downstream benchmark config: the protocol it promises, built with
stock mmdet / mmseg, loading our DenseCL checkpoint with nothing missing or
left over, and failing before training on a bad checkpoint."""
import glob
import importlib
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DET = 'configs/benchmarks/mmdetection'
SEG = 'configs/benchmarks/mmsegmentation'
#: config -> (scope, schedule length, unit); the length is the one its
#: name states (1x = 12 epochs, 20k = 20000 iterations)
CONFIGS = {
    f'{DET}/voc0712/faster-rcnn_r50-c4_8xb2-24k_voc0712.py':
    ('mmdet', 24000, 'iter'),
    **{f'{DET}/coco/mask-rcnn_r50-{neck}_8xb2-{x}x_coco.py': ('mmdet', 12 * x, 'epoch')
       for neck in ('c4', 'fpn') for x in (1, 2)},
    **{f'{SEG}/{data}/fcn_r50-d8_{gpus}-{k}k_{data}-{size}.py': ('mmseg', 1000 * k, 'iter')
       for data, gpus, size, ks in (('voc12aug', '4xb4', '512x512', (20, 40)),
                                    ('cityscapes', '4xb2', '769x769', (40, 80)),
                                    ('ade20k', '4xb4', '512x512', (80, 160)))
       for k in ks},
}
SYNC_BN = dict(type='SyncBN', requires_grad=True)
RGB = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
           bgr_to_rgb=True)
NAME = re.compile(r'^[a-z0-9-]+_[a-z0-9-]+_\d+xb\d+-\d+[kx]_[a-z0-9-]+\.py$')


def load(path):
    return Config.fromfile(osp.join(ROOT, path))


def is_c4(cfg):
    return cfg.model.get('roi_head', {}).get('shared_head') is not None


def test_every_config_is_listed():
    found = {osp.relpath(p, ROOT) for d in (DET, SEG) for p in glob.glob(
        osp.join(ROOT, d, '*', '*.py')) if '/_base_/' not in p}
    assert found == set(CONFIGS)
    assert all(NAME.match(osp.basename(p)) for p in found), found


@pytest.mark.parametrize('path', sorted(CONFIGS))
def test_protocol(path):
    cfg = load(path)
    scope, length, unit = CONFIGS[path]
    model = cfg.model
    assert 'densecl_plugin.downstream' in cfg.custom_imports['imports']
    assert model.init_cfg.type == 'densecl_plugin.DenseCLPretrained'
    assert model.init_cfg.checkpoint is None
    bb = model.backbone
    assert (bb.type, bb.depth, bb.style) == ('ResNet', 50, 'pytorch')
    assert bb.norm_cfg == SYNC_BN and bb.norm_eval is False
    assert bb.init_cfg is None
    for k, v in RGB.items():  # pytorch-style RGB input, inside the model
        assert model.data_preprocessor[k] == v
    if scope == 'mmdet':
        assert bb.frozen_stages == -1
        if is_c4(cfg):
            head = model.roi_head.shared_head
            assert head.type == 'DenseCLResLayerExtraNorm'
            assert (head.style, head.norm_cfg, head.norm_eval,
                    head.init_cfg) == ('pytorch', SYNC_BN, False, None)
            assert model.init_cfg.targets == ['backbone',
                                              'roi_head.shared_head']
        else:
            assert model.neck.norm_cfg == SYNC_BN
            assert model.roi_head.bbox_head.type == 'Shared4Conv1FCBBoxHead'
            assert model.roi_head.bbox_head.norm_cfg == SYNC_BN
            assert model.roi_head.mask_head.norm_cfg == SYNC_BN
        if 'coco' in path:  # multi-scale 640..800 training
            resize = cfg.train_dataloader.dataset.pipeline[2]
            assert resize.type == 'RandomChoiceResize'
            assert [s[1] for s in resize.scales] == list(range(640, 801, 32))
    else:
        assert model.pretrained is None
        assert bb.deep_stem is False
        assert tuple(bb.dilations) == (1, 1, 2, 4)
        assert tuple(bb.strides) == (1, 2, 1, 1)
        assert bb.contract_dilation is True
        assert model.decode_head.norm_cfg == SYNC_BN
    if unit == 'iter':
        assert cfg.train_cfg.type == 'IterBasedTrainLoop'
        assert cfg.train_cfg.max_iters == length
        assert max(s.get('end', 0) for s in cfg.param_scheduler) == length


def _lr_per_epoch(cfg, epochs):
    """Build the config's real schedulers and step them epoch by epoch."""
    from mmengine.registry import PARAM_SCHEDULERS
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.02)
    scheds = [PARAM_SCHEDULERS.build(dict(s, optimizer=opt))
              for s in cfg.param_scheduler if s.get('by_epoch', True)]
    lrs = []
    for _ in range(epochs):
        lrs.append(opt.param_groups[0]['lr'])
        for s in scheds:
            s.step()
    return lrs


@pytest.mark.parametrize('path', [p for p in sorted(CONFIGS) if 'x_coco' in p])
def test_coco_schedules_really_are_1x_and_2x(path):
    """mmselfsup's C4 2x trained 12 epochs: a second train_cfg overrode 24."""
    cfg = load(path)
    epochs = CONFIGS[path][1]
    assert cfg.train_cfg.type == 'EpochBasedTrainLoop'
    assert cfg.train_cfg.max_epochs == epochs
    lrs = _lr_per_epoch(cfg, epochs)
    steps = (8, 11) if epochs == 12 else (16, 22)
    want = [0.02 * 0.1**sum(e >= s for s in steps) for e in range(epochs)]
    assert lrs == pytest.approx(want)


def test_voc_schedule_and_metric():
    cfg = load(next(p for p in CONFIGS if 'voc0712' in p))
    multistep = [s for s in cfg.param_scheduler
                 if s.type == 'MultiStepLR'][0]
    assert multistep.milestones == [18000, 22000]
    assert cfg.train_cfg.val_interval == 2000
    ev = cfg.val_evaluator
    assert ev.type == 'VOCMetric' and ev.eval_mode == '11points'
    assert ev.iou_thrs == pytest.approx([0.5 + 0.05 * i for i in range(10)])
    assert cfg.train_dataloader.dataset.ignore_keys == ['dataset_type']
    assert len(cfg.train_dataloader.dataset.datasets) == 2  # VOC07 + VOC12


def build_model(cfg, scope):
    init_default_scope(scope)
    registry = importlib.import_module(f'{scope}.registry').MODELS
    return registry.build(cfg.model)


#: configs whose model equals another config's (only the schedule differs)
SAME_MODEL = {
    f'{DET}/coco/mask-rcnn_r50-c4_8xb2-2x_coco.py':
    f'{DET}/coco/mask-rcnn_r50-c4_8xb2-1x_coco.py',
    f'{DET}/coco/mask-rcnn_r50-fpn_8xb2-2x_coco.py':
    f'{DET}/coco/mask-rcnn_r50-fpn_8xb2-1x_coco.py',
    f'{SEG}/voc12aug/fcn_r50-d8_4xb4-40k_voc12aug-512x512.py':
    f'{SEG}/voc12aug/fcn_r50-d8_4xb4-20k_voc12aug-512x512.py',
    f'{SEG}/cityscapes/fcn_r50-d8_4xb2-80k_cityscapes-769x769.py':
    f'{SEG}/cityscapes/fcn_r50-d8_4xb2-40k_cityscapes-769x769.py',
    f'{SEG}/ade20k/fcn_r50-d8_4xb4-160k_ade20k-512x512.py':
    f'{SEG}/ade20k/fcn_r50-d8_4xb4-80k_ade20k-512x512.py',
}


@pytest.mark.parametrize('path', sorted(SAME_MODEL))
def test_longer_schedules_share_the_model(path):
    """So building the shorter one's model covers them (see below)."""
    cfg, other = load(path), load(SAME_MODEL[path])
    assert cfg.model == other.model
    assert cfg.train_dataloader == other.train_dataloader
    assert cfg.val_evaluator == other.val_evaluator


@pytest.mark.parametrize('path', sorted(set(CONFIGS) - set(SAME_MODEL)))
def test_builds_and_loads_a_full_densecl_checkpoint(path,
                                                    densecl_r50_checkpoint,
                                                    densecl_r50_backbone):
    cfg = load(path)
    cfg.model.init_cfg.checkpoint = densecl_r50_checkpoint
    model = build_model(cfg, CONFIGS[path][0])
    model.init_weights()
    file_keys = set(densecl_r50_backbone)
    used = set()
    parts = [model.backbone] + ([model.roi_head.shared_head]
                                if is_c4(cfg) else [])
    for part in parts:
        for k, v in part.state_dict().items():
            if k.startswith('extra_norm.'):
                continue
            assert k in file_keys, f'missing: {k}'  # zero missing
            assert torch.equal(v, densecl_r50_backbone[k]), k
            used.add(k)
    assert used == file_keys  # zero unexpected: every file tensor is used


@pytest.mark.parametrize('path', [p for p in sorted(CONFIGS)
                                  if 'voc' in p])
def test_loads_an_extracted_checkpoint(path, extracted_r50_checkpoint,
                                       densecl_r50_backbone):
    cfg = load(path)
    cfg.merge_from_dict({'model.init_cfg.checkpoint':
                         extracted_r50_checkpoint})  # the one CLI override
    model = build_model(cfg, CONFIGS[path][0])
    model.init_weights()
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, densecl_r50_backbone[k]), k
    if is_c4(cfg):
        for k, v in model.roi_head.shared_head.layer4.state_dict().items():
            assert torch.equal(v, densecl_r50_backbone[f'layer4.{k}']), k


@pytest.mark.parametrize('bad', ['missing', 'no_backbone'])
def test_bad_checkpoint_fails_before_training(bad, tmp_path, tiny_datasets):
    from mmengine.runner import Runner

    from densecl_plugin.converters import BackboneNotFoundError
    from test_downstream.smoke import make_smoke_config
    ckpt = str(tmp_path / f'{bad}.pth')
    error, match = FileNotFoundError, 'does not exist'
    if bad == 'no_backbone':
        torch.save({'state_dict': {'neck.mlp.0.weight': torch.zeros(2, 2),
                                   'queue': torch.zeros(2, 8)}}, ckpt)
        error, match = BackboneNotFoundError, r"found 'neck.' \(1 key\)"
    layout = tiny_datasets('voc12aug')
    cfg = make_smoke_config(
        osp.join(ROOT, SEG,
                 'voc12aug/fcn_r50-d8_4xb4-20k_voc12aug-512x512.py'),
        ckpt, layout.data_root, str(tmp_path / 'work'))
    runner = Runner.from_cfg(cfg)
    with pytest.raises(error, match=match) as err:
        runner.train()
    assert 'model.init_cfg.checkpoint' in str(err.value)
    assert runner.iter == 0  # not one training step was taken
