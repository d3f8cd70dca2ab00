# Copyright (c) densecl_plugin contributors. All rights reserved.
"""A real DenseCL ResNet-50 checkpoint, and tiny real data sets.

The checkpoint is our ``DenseCL`` model's own ``state_dict`` (``backbone.*``,
``neck.*``, ``encoder_k.*``, queues), saved the way MMEngine saves it. Its
backbone BN statistics are measured on real photos first (as any trained
network's are): with the 0 / 1 statistics of a fresh init, a random
ResNet-50 in eval mode blows activations up to ~1e5 and a detector predicts
nothing, which would hide the evaluation path.
"""
import os.path as osp

import pytest
import torch


def _calibrate_bn(backbone, image_paths, size=96):
    import cv2
    imgs = []
    for p in image_paths:
        img = cv2.resize(cv2.imread(p)[..., ::-1], (size, size),
                         interpolation=cv2.INTER_AREA).astype('float32')
        imgs.append(torch.from_numpy((img - 120.) / 60.).permute(2, 0, 1))
    x = torch.stack(imgs)  # Nx3xHxW, real photos
    for m in backbone.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average
    backbone.train()
    with torch.no_grad():
        backbone(x)
        backbone(x.flip(-1))


@pytest.fixture(scope='session')
def densecl_r50_checkpoint(tmp_path_factory, real_image_paths):
    """Path of a real DenseCL (ResNet-50) checkpoint in our layout."""
    from mmengine.logging import MessageHub
    from mmengine.runner.checkpoint import weights_to_cpu

    from tiny_models import build_tiny_model
    torch.manual_seed(0)
    model = build_tiny_model('DenseCL', depth=50, hid_channels=64,
                             feat_dim=16, queue_len=32)
    _calibrate_bn(model.backbone, real_image_paths)
    hub = MessageHub.get_instance('tw_downstream_ckpt')
    hub.update_scalar('train/loss', 7.5)
    path = str(tmp_path_factory.mktemp('ckpt') / 'densecl_r50.pth')
    torch.save({'meta': {'epoch': 1, 'iter': 10, 'mmengine': '0.10.7'},
                'state_dict': weights_to_cpu(model.state_dict()),
                'message_hub': hub.state_dict(),
                'optimizer': {'state': {}, 'param_groups': []}}, path)
    return path


@pytest.fixture(scope='session')
def densecl_r50_backbone(densecl_r50_checkpoint):
    """The checkpoint's backbone tensors (``conv1.weight`` ...)."""
    sd = torch.load(densecl_r50_checkpoint, weights_only=True)['state_dict']
    return {k[len('backbone.'):]: v for k, v in sd.items()
            if k.startswith('backbone.')}


@pytest.fixture(scope='session')
def extracted_r50_checkpoint(densecl_r50_checkpoint, tmp_path_factory):
    """The same backbone, extracted (no prefix)."""
    from densecl_plugin.converters import extract_backbone_weights
    path = str(tmp_path_factory.mktemp('ckpt') / 'densecl_r50_backbone.pth')
    extract_backbone_weights(densecl_r50_checkpoint, path)
    return path


@pytest.fixture(scope='session')
def tiny_datasets(tmp_path_factory):
    """``tiny_datasets(name)``: build (once) and return a tiny real layout.

    Names: ``voc0712``, ``coco``, ``voc12aug``, ``cityscapes``, ``ade20k``.
    """
    from densecl_lab import data_prep
    root = str(tmp_path_factory.mktemp('tiny_data'))
    built = {}
    builders = {
        'voc0712': lambda: data_prep.build_voc_detection(
            root, tile_size=200, out_size=128, max_tiles=10),
        'coco': lambda: data_prep.build_coco_instances(
            root, nuclei_tile=128, nuclei_out_size=96, tree_out_size=96),
        'voc12aug': lambda: data_prep.build_voc12(root, out_size=64),
        'cityscapes': lambda: data_prep.build_cityscapes(root, out_size=64),
        'ade20k': lambda: data_prep.build_ade20k(root, out_size=64),
    }

    def get(name):
        if name not in built:
            built[name] = builders[name]()
        return built[name]

    return get


@pytest.fixture(scope='session')
def repo_root():
    return osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
