# Copyright (c) densecl_plugin contributors. All rights reserved.
"""LinearClassifier: frozen backbone, checkpoint loading, a real Runner run.

The Runner test trains the linear probe of the CPU folder config on a real
labelled set: scikit-image's ``lfw_subset`` (100 face and 100 non-face
25x25 photos, written as class folders; 70 + 70 train, 30 + 30 val). The
backbone is a seeded random ResNet-18, since no trained DenseCL exists in
CI; random convolutional features still separate faces from non-faces
linearly. Measured (CPU, 3-4 epochs at 32 px, 4 seeds of the random
checkpoint): 82-92% top-1 on the 60 val images, against 50% for chance; the
test asks for 75%.
"""
import copy
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.structures import BaseDataElement

from densecl_plugin.evaluation import (LinearClassifier,
                                       load_pretrained_backbone)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG_DIR = osp.join(ROOT, 'configs', 'benchmarks', 'classification')
FOLDER_CFG = osp.join(CFG_DIR, 'folder',
                      'resnet18_linear-1xb32-steplr-10e_folder-64px.py')
R18 = dict(type='mmdet.ResNet', depth=18, out_indices=(3, ))


def build(**kwargs):
    return LinearClassifier(backbone=R18, in_channels=512, num_classes=3,
                            **kwargs)


def samples(labels):
    return [BaseDataElement(gt_label=torch.tensor([y])) for y in labels]


def test_backbone_is_frozen_in_train_mode():
    torch.manual_seed(0)
    model = build()
    model.init_weights()
    model.train()
    assert model.training and model.head.training
    bns = [m for m in model.backbone.modules()
           if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert bns and not any(m.training for m in model.backbone.modules())
    assert not any(p.requires_grad for p in model.backbone.parameters())
    before = copy.deepcopy(model.backbone.state_dict())

    x = torch.randn(4, 3, 32, 32)
    feat = model.extract_feat(x)
    assert feat.shape == (4, 512) and feat.grad_fn is None
    loss = model(x, samples([0, 1, 2, 1]), mode='loss')['loss']
    loss.backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert model.head.weight.grad is not None
    after = model.backbone.state_dict()
    for k, v in before.items():  # running stats untouched by the forward
        assert torch.equal(v, after[k]), k


def test_forward_modes():
    torch.manual_seed(0)
    model = build().eval()
    x = torch.randn(2, 3, 32, 32)
    logits = model(x)
    assert logits.shape == (2, 3)
    out = model(x, samples([0, 2]), mode='predict')
    torch.testing.assert_close(out[0].pred_score, logits[0].softmax(0))
    assert out[1].pred_label.tolist() == [int(logits[1].argmax())]
    assert out[1].gt_label.tolist() == [2]
    with pytest.raises(ValueError, match='mode must be'):
        model(x, mode='features')
    with pytest.raises(ValueError, match='needs data_samples'):
        model(x, mode='loss')
    with pytest.raises(ValueError, match='in_channels=2048'):
        LinearClassifier(backbone=R18, in_channels=2048,
                         num_classes=3).extract_feat(x)
    with pytest.raises(ValueError, match='num_classes'):
        LinearClassifier(backbone=R18, in_channels=512, num_classes=1)


def test_head_init_follows_moco():
    torch.manual_seed(0)
    model = LinearClassifier(backbone=R18, in_channels=512,
                             num_classes=1000)
    model.init_weights()
    w = model.head.weight.detach()
    assert abs(float(w.std()) - 0.01) < 0.001 and float(w.mean()) < 0.001
    assert torch.equal(model.head.bias, torch.zeros(1000))


@pytest.fixture(scope='module')
def r18_checkpoints(tmp_path_factory):
    """One random ResNet-18 saved three ways."""
    from densecl_plugin.registry import MODELS
    torch.manual_seed(1)
    backbone = MODELS.build(R18)
    sd = backbone.state_dict()
    folder = tmp_path_factory.mktemp('ckpts')
    full = {f'backbone.{k}': v for k, v in sd.items()}
    full.update({'neck.mlp.0.weight': torch.ones(8, 512),
                 'encoder_k.module.0.conv1.weight': torch.ones(1),
                 'queue': torch.ones(8, 4), 'queue_ptr': torch.zeros(1)})
    paths = dict(full=str(folder / 'full.pth'),
                 extracted=str(folder / 'extracted.pth'),
                 mmengine_init=str(folder / 'for_pretrained_init.pth'))
    torch.save(dict(state_dict=full, meta=dict(epoch=200)), paths['full'])
    torch.save(dict(state_dict=dict(sd)), paths['extracted'])
    torch.save(dict(state_dict=full), paths['mmengine_init'])
    return sd, paths


@pytest.mark.parametrize('layout', ['full', 'extracted'])
def test_pretrained_full_and_extracted_checkpoints(r18_checkpoints, layout):
    sd, paths = r18_checkpoints
    torch.manual_seed(2)
    model = build(pretrained=paths[layout])
    model.init_weights()
    got = model.backbone.state_dict()
    for k, v in sd.items():
        assert torch.equal(got[k], v), k


def test_mmengine_pretrained_init_cfg_works_too(r18_checkpoints):
    sd, paths = r18_checkpoints
    backbone = dict(R18, init_cfg=dict(type='Pretrained', prefix='backbone.',
                                       checkpoint=paths['mmengine_init']))
    model = LinearClassifier(backbone=backbone, in_channels=512,
                             num_classes=3)
    model.init_weights()
    assert torch.equal(model.backbone.conv1.weight, sd['conv1.weight'])


def test_checkpoint_of_another_depth_is_an_error(r18_checkpoints):
    _, paths = r18_checkpoints
    model = LinearClassifier(
        backbone=dict(type='mmdet.ResNet', depth=50, out_indices=(3, )),
        in_channels=2048, num_classes=3, pretrained=paths['full'])
    with pytest.raises(ValueError, match=r'lacks \d+ weights of the ResNet'):
        model.init_weights()
    res4 = dict(type='mmdet.ResNet', depth=18, num_stages=3,
                strides=(1, 2, 1), dilations=(1, 1, 1), out_indices=(2, ))
    from densecl_plugin.registry import MODELS
    info = load_pretrained_backbone(MODELS.build(res4), paths['full'])
    assert info['prefix'] == 'backbone.'
    assert info['skipped'] and all(k.startswith('layer4.')
                                   for k in info['skipped'])


def test_imagenet_config_is_the_moco_protocol():
    cfg = Config.fromfile(osp.join(
        CFG_DIR, 'imagenet', 'resnet50_linear-8xb32-steplr-100e_in1k.py'))
    assert cfg.default_scope == 'densecl_plugin'
    assert cfg.model.type == 'LinearClassifier'
    assert cfg.model.backbone.depth == 50 and cfg.model.in_channels == 2048
    assert cfg.model.num_classes == 1000
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.momentum, opt.weight_decay) == (
        'SGD', 30., 0.9, 0.)
    assert cfg.train_dataloader.batch_size * 8 == 256
    assert cfg.auto_scale_lr.base_batch_size == 256
    assert cfg.train_cfg.max_epochs == 100
    assert cfg.param_scheduler[0].type == 'MultiStepLR'
    assert cfg.param_scheduler[0].milestones == [60, 80]
    train = {t.type: t for t in cfg.train_dataloader.dataset.pipeline}
    assert train['RandomResizedCrop'].size == 224
    assert tuple(train['RandomResizedCrop'].scale) == (0.08, 1.)
    assert train['RandomFlip'].prob == 0.5
    test = {t.type: t for t in cfg.val_dataloader.dataset.pipeline}
    assert (test['ResizeEdge'].scale, test['ResizeEdge'].edge) == (256,
                                                                   'short')
    assert test['mmcv.CenterCrop'].crop_size == 224
    assert tuple(cfg.val_evaluator.topk) == (1, 5)


@pytest.fixture(scope='module')
def lfw_folders(tmp_path_factory):
    """scikit-image's real faces / non-faces as train/ and val/ folders."""
    from skimage.data import lfw_subset
    images = lfw_subset()  # (200, 25, 25) in [0, 1]: 100 faces, 100 not
    root = tmp_path_factory.mktemp('lfw')
    for label, name in enumerate(['face', 'nonface']):
        ids = np.arange(100) + 100 * label
        for split, sel in [('train', ids[:70]), ('val', ids[70:])]:
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in sel:
                cv2.imwrite(str(folder / f'{i:03d}.png'),
                            (images[i] * 255).round().astype(np.uint8))
    return str(root)


def test_runner_linear_probe_on_real_faces(lfw_folders, r18_checkpoints,
                                           tmp_path):
    from mmengine.runner import Runner
    _, paths = r18_checkpoints
    cfg = Config.fromfile(FOLDER_CFG)
    cfg.work_dir = str(tmp_path)
    cfg.model.pretrained = paths['full']
    crop = 32
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.data_root = lfw_folders
        for t in loader.dataset.pipeline:
            if t.type == 'RandomResizedCrop':
                t.size = crop
            elif t.type == 'ResizeEdge':
                t.scale = crop * 8 // 7
            elif t.type == 'mmcv.CenterCrop':
                t.crop_size = crop
    cfg.train_cfg.max_epochs = cfg.train_cfg.val_interval = 3
    cfg.param_scheduler[0].milestones = [2]
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=3)
    cfg.randomness = dict(seed=0)
    cfg.log_level = 'WARNING'
    runner = Runner.from_cfg(cfg)
    assert runner.train_dataloader.dataset.metainfo['classes'] == (
        'face', 'nonface')
    runner.train()
    backbone = runner.model.backbone.state_dict()
    # the pre-trained weights were loaded and are bit-identical after
    # training (weights, BN running statistics and counters)
    sd, _ = r18_checkpoints
    for k, v in sd.items():
        assert torch.equal(backbone[k], v), k
    metrics = runner.val_loop.run()
    assert metrics['accuracy/top1'] > 75, metrics
    assert osp.isfile(osp.join(str(tmp_path), 'epoch_3.pth'))
