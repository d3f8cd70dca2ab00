# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Checkpoints in every layout the converters read, made from real ResNets.

The backbone weights come from a real ``mmdet.models.backbones.ResNet``
whose every tensor is then overwritten with distinct random values (BN
statistics and counters included), so that a converter that mixes up two
tensors of the same shape (``bn1`` / ``bn2``, ``conv1`` / ``downsample``)
cannot pass an exact comparison.
"""
from typing import Dict, NamedTuple

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


# ours on real images: the targets' outputs (timm, onnxruntime) are compared
# with these ----------------------------------------------------------------
def perturb_bn(model: torch.nn.Module, seed: int = 0) -> None:
    """Give every BN non-trivial statistics and affine weights, so that an
    export that drops or mis-orders them (or uses batch statistics) shows."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=gen) * 0.2 - 0.1)
                m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(n, generator=gen) * 0.5 + 0.5)
                m.bias.copy_(torch.rand(n, generator=gen) * 0.2 - 0.1)


@pytest.fixture(scope='session')
def bn_perturbed():
    """:func:`perturb_bn` (``bn_perturbed(model, seed=0)``)."""
    return perturb_bn


class Ours(NamedTuple):
    """Our model, its checkpoint, real photos and our features of them."""
    model: torch.nn.Module
    checkpoint: str
    x: torch.Tensor  # (7, 3, 96, 128): 7 real photos, normalised
    c5: torch.Tensor  # (7, C, 3, 4)
    pooled: torch.Tensor  # (7, C)


def real_batch(model: torch.nn.Module, paths, size=(96, 128)) -> torch.Tensor:
    """Real photos resized to ``size`` (h, w), through ``model``'s own data
    preprocessor (BGR -> RGB, ImageNet normalisation): ``(N, 3, h, w)``."""
    import mmcv
    imgs = [torch.from_numpy(mmcv.imresize(mmcv.imread(p), size[::-1]))
            .permute(2, 0, 1).contiguous() for p in paths]
    return model.data_preprocessor({'inputs': [imgs]}, False)['inputs'][0]


@pytest.fixture(scope='module')
def ours(tmp_path_factory, real_image_paths):
    """``ours(depth) -> Ours``: a DenseCL model with the configs' backbone
    (``tests/tiny_models.py``, full width) and data preprocessor (ImageNet
    normalisation, BGR -> RGB), random init with perturbed BN, in eval mode,
    saved as a Runner-style checkpoint; its backbone's C5 and pooled C5 of
    the 7 real photos (:func:`real_batch`)."""
    from tiny_models import build_tiny_model
    cache = {}

    def make(depth: int) -> Ours:
        if depth not in cache:
            torch.manual_seed(depth)
            model = build_tiny_model(
                'DenseCL', depth=depth,
                data_preprocessor=dict(type='SelfSupDataPreprocessor'))
            perturb_bn(model, seed=depth)
            model.eval()
            path = str(tmp_path_factory.mktemp(f'ours{depth}') / 'iter_8.pth')
            torch.save({'meta': {'iter': 8}, 'state_dict': model.state_dict()},
                       path)
            x = real_batch(model, real_image_paths)
            with torch.no_grad():
                c5 = model.backbone(x)[-1]
            cache[depth] = Ours(model, path, x, c5, c5.mean(dim=(2, 3)))
        return cache[depth]

    return make
