# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Checkpoints in every layout the converters read, made from real ResNets.

The backbone weights come from a real ``mmdet.models.backbones.ResNet``
whose every tensor is then overwritten with distinct random values (BN
statistics and counters included), so that a converter that mixes up two
tensors of the same shape (``bn1`` / ``bn2``, ``conv1`` / ``downsample``)
cannot pass an exact comparison.
"""
from typing import Dict

import pytest
import torch


def random_resnet_state_dict(depth: int, seed: int = 0, **kwargs
                             ) -> Dict[str, torch.Tensor]:
    """A real mmdet ResNet's state dict with distinct random values."""
    from mmdet.models.backbones import ResNet
    gen = torch.Generator().manual_seed(seed)
    sd = ResNet(depth, **kwargs).state_dict()
    out = {}
    for k, v in sd.items():
        if v.is_floating_point():
            out[k] = torch.randn(v.shape, generator=gen)
        else:  # num_batches_tracked
            out[k] = torch.randint(1, 10**6, v.shape, generator=gen)
    return out


def _prefixed(prefix, sd, shift=0.0):
    return {prefix + k: (v + shift if v.is_floating_point() else v)
            for k, v in sd.items()}


def layout_checkpoint(layout: str, sd: Dict[str, torch.Tensor]) -> dict:
    """Wrap backbone weights ``sd`` as a checkpoint of ``layout``.

    Key-encoder weights are ``sd + 1`` so that picking the wrong encoder is
    visible. Layouts: ``densecl_plugin`` (= mmselfsup 1.x / mmpretrain),
    ``openselfsup`` (authors' DenseCL), ``openselfsup_q`` (only
    ``encoder_q.0``), ``moco``, ``extracted`` (``{'state_dict': sd}``) and
    ``bare`` (``sd`` with a torchvision ``fc``).
    """
    neck = {'mlp.0.weight': torch.randn(8, 4), 'mlp.0.bias': torch.randn(8),
            'mlp2.0.weight': torch.randn(8, 4, 1, 1)}
    queues = {'queue': torch.randn(8, 16), 'queue_ptr': torch.zeros(1).long(),
              'queue2': torch.randn(8, 16),
              'queue2_ptr': torch.zeros(1).long()}
    if layout == 'densecl_plugin':
        state = {**_prefixed('backbone.', sd), **_prefixed('neck.', neck),
                 **_prefixed('encoder_k.module.0.', sd, 1.0),
                 **_prefixed('encoder_k.module.1.', neck, 1.0),
                 'encoder_k.steps': torch.tensor(5), **queues}
        return {'meta': {'epoch': 1, 'iter': 5, 'mmengine': '0.10.7'},
                'state_dict': state,
                'optimizer': {'state': {}, 'param_groups': [{'lr': 0.03}]},
                'message_hub': {'log_scalars': {}, 'runtime_info': {}}}
    if layout in ('openselfsup', 'openselfsup_q'):
        state = {**_prefixed('encoder_q.0.', sd),
                 **_prefixed('encoder_q.1.', neck),
                 **_prefixed('encoder_k.0.', sd, 1.0),
                 **_prefixed('encoder_k.1.', neck, 1.0), **queues}
        if layout == 'openselfsup':  # the same module registered twice
            state.update(_prefixed('backbone.', sd))
        return {'meta': {'mmcv_version': '0.4.3', 'epoch': 200},
                'state_dict': state}
    if layout == 'moco':
        fc = {'fc.0.weight': torch.randn(8, 4), 'fc.0.bias': torch.randn(8),
              'fc.2.weight': torch.randn(4, 8), 'fc.2.bias': torch.randn(4)}
        state = {**_prefixed('module.encoder_q.', {**sd, **fc}),
                 **_prefixed('module.encoder_k.', {**sd, **fc}, 1.0),
                 'module.queue': torch.randn(4, 16),
                 'module.queue_ptr': torch.zeros(1).long()}
        return {'epoch': 200, 'arch': 'resnet50', 'state_dict': state,
                'optimizer': {'state': {}, 'param_groups': []}}
    if layout == 'extracted':
        return {'state_dict': dict(sd), 'author': 'DenseCL'}
    if layout == 'bare':
        return {**sd, 'fc.weight': torch.randn(10, 4),
                'fc.bias': torch.randn(10)}
    raise ValueError(layout)


@pytest.fixture(scope='session')
def resnet18_sd():
    """Distinct random weights of a real mmdet ResNet-18."""
    return random_resnet_state_dict(18)


@pytest.fixture(scope='session')
def resnet50_sd():
    """Distinct random weights of a real mmdet ResNet-50."""
    return random_resnet_state_dict(50, seed=1)


@pytest.fixture(scope='session')
def make_checkpoint():
    """``make_checkpoint(layout, sd)``: see :func:`layout_checkpoint`."""
    return layout_checkpoint


@pytest.fixture
def run_converter(make_checkpoint, tmp_path, capsys):
    """``run_converter(name, layout, sd, dst_name) -> (dst, printed)``.

    Saves ``sd`` as a ``layout`` checkpoint, runs the command line of
    ``tools/model_converters/<name>.py`` on it in this process
    (:func:`~densecl_plugin.converters.cli.converter_main`) and returns the
    output path and what it printed.
    """
    from densecl_plugin.converters.cli import converter_main

    def run(name: str, layout: str, sd: Dict[str, torch.Tensor],
            dst_name: str):
        src, dst = str(tmp_path / f'{layout}.pth'), str(tmp_path / dst_name)
        torch.save(make_checkpoint(layout, sd), src)
        capsys.readouterr()
        converter_main(name, [src, dst])
        return dst, capsys.readouterr().out

    return run
