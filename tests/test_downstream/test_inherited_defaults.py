# Copyright (c) densecl_plugin contributors. All rights reserved.
"""What the downstream configs' ResNets really are once built (issue 11).

The project once pre-trained with every BatchNorm frozen because mmdet's
``ResNet`` defaults to ``norm_eval=True`` and a config relied on it. These
tests build the real model of every downstream config (globbed, so a new
config is covered), call ``train()`` the way the runner does, and check the
BN mode the config intends on the modules themselves, not on the config:

- detection / segmentation fine-tuning (benchmarks and the demo): every BN
  of the backbone (and of the C4 RoI shared head) is in training mode with
  trainable parameters, and no stage is frozen;
- the linear probe and the DAVIS encoder: every BN is in eval mode and no
  backbone parameter requires grad after ``train()``.

They also check the effect of the other ResNet choices the configs make
explicit (``style``, stem, ``avg_down``, strides / dilations,
``zero_init_residual``), and that the helpers do catch each mistake
(negative checks on flipped configs).
"""
import copy
import functools
import glob
import importlib
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from torch.nn.modules.batchnorm import _BatchNorm

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BENCH_KINDS = {'mmdetection': 'det', 'mmsegmentation': 'seg',
               'classification': 'linear', 'davis': 'davis'}
DEMO_DOWNSTREAM = {
    'configs/demo/faster-rcnn_r18-fpn_1xb4-60iters_deepforest-voc.py': 'det',
    'configs/demo/fcn_r18-d8_1xb8-120iters_stardist-nuclei.py': 'seg',
}
#: the ResNet choices every downstream config must state itself
EXPLICIT = ('type', 'depth', 'frozen_stages', 'norm_eval', 'norm_cfg',
            'style', 'deep_stem', 'avg_down', 'strides', 'dilations',
            'num_stages', 'out_indices', 'zero_init_residual', 'init_cfg')
#: zero_init_residual of the benchmark protocols (only matters for a random
#: init): detectron2 and MoCo's torchvision ResNet keep every BN weight at
#: 1; the segmentation benchmarks keep mmseg's ResNet default (0)
PROTOCOL_ZERO_INIT = {'det': False, 'seg': True, 'linear': False,
                      'davis': False}


@functools.lru_cache(maxsize=None)
def _load(path):
    return Config.fromfile(osp.join(ROOT, path))


def load(path):
    """The config (a copy: tests may change it)."""
    return copy.deepcopy(_load(path))


def kind_of(cfg):
    """'det' / 'seg' / 'linear' / 'davis', or None for pre-training."""
    if 'encoder' in cfg and 'propagation' in cfg:
        return 'davis'
    scope = cfg.get('default_scope')
    if scope in ('mmdet', 'mmseg'):
        return {'mmdet': 'det', 'mmseg': 'seg'}[scope]
    if cfg.get('model', {}).get('type') == 'LinearClassifier':
        return 'linear'
    return None


def _rel(path):
    return osp.relpath(path, ROOT)


def downstream_configs():
    """Every downstream config (``_base_`` files skipped) -> its kind."""
    found = {}
    for folder, kind in BENCH_KINDS.items():
        pattern = osp.join(ROOT, 'configs', 'benchmarks', folder, '**',
                           '*.py')
        for p in glob.glob(pattern, recursive=True):
            if '_base_' not in _rel(p).split(osp.sep):
                found[_rel(p)] = kind
    for p in glob.glob(osp.join(ROOT, 'configs', 'demo', '*.py')):
        kind = kind_of(load(_rel(p)))
        if kind is not None:
            found[_rel(p)] = kind
    return dict(sorted(found.items()))


CONFIGS = downstream_configs()
BENCHMARKS = [p for p in CONFIGS if p.startswith('configs/benchmarks/')]


def backbone_cfg(cfg):
    return cfg.encoder if kind_of(cfg) == 'davis' else cfg.model.backbone


def _import(cfg):
    for name in cfg.get('custom_imports', {}).get('imports', []):
        importlib.import_module(name)


def registry_of(cfg):
    """The MODELS registry the config builds from, with its scope set."""
    scope = cfg.get('default_scope', 'densecl_plugin')
    _import(cfg)
    init_default_scope(scope)
    return importlib.import_module(f'{scope}.registry').MODELS


_BUILT = {}


def build(cfg):
    """The config's real model (cached: several configs share one model)."""
    kind = kind_of(cfg)
    key = (kind, repr(backbone_cfg(cfg) if kind == 'davis' else cfg.model))
    if key not in _BUILT:
        registry = registry_of(cfg)
        if kind == 'davis':
            from densecl_plugin.evaluation.davis import build_res4_encoder
            _BUILT[key] = build_res4_encoder(cfg.encoder)
        else:
            _BUILT[key] = registry.build(cfg.model)
    return _BUILT[key]


def build_part(cfg, part_cfg):
    """One sub-module (a backbone, a shared head) in the config's scope."""
    return registry_of(cfg).build(part_cfg)


def in_train_mode(module):
    """``module.train()`` as the runner calls it (mmdet's ``ResNet.train``
    returns None, so no chaining)."""
    module.train()
    return module


def resnet_parts(model, kind):
    """The parts of ``model`` that come from the pre-trained ResNet."""
    parts = {'backbone': model.backbone}
    shared = getattr(getattr(model, 'roi_head', None), 'shared_head', None)
    if kind == 'det' and shared is not None:
        parts['roi_head.shared_head'] = shared
    return parts


# --- the checks; each raises AssertionError saying what is wrong ---------
def _bns(module, what):
    bns = [(n, m) for n, m in module.named_modules()
           if isinstance(m, _BatchNorm)]
    assert bns, f'{what}: no BatchNorm found'
    return bns


def assert_fine_tunes(module, what):
    """Every BN trains (training mode, trainable affine), nothing frozen."""
    bns = _bns(module, what)
    problems = []
    eval_bn = [n for n, m in bns if not m.training]
    if eval_bn:
        problems.append(f'{len(eval_bn)} of {len(bns)} BN layers in eval '
                        f'mode after train(): {eval_bn[:4]}')
    no_affine = [n for n, m in bns
                 if not (m.affine and m.weight.requires_grad
                         and m.bias.requires_grad)]
    if no_affine:
        problems.append(f'BN without trainable affine: {no_affine[:4]}')
    frozen = [n for n, p in module.named_parameters() if not p.requires_grad]
    if frozen:
        problems.append(f'{len(frozen)} parameters with requires_grad=False '
                        f'(a frozen stage?): {frozen[:4]}')
    eval_mods = [n for n, m in module.named_modules() if not m.training]
    if eval_mods:
        problems.append(f'modules in eval mode: {eval_mods[:4]}')
    assert not problems, f'{what}: ' + '; '.join(problems)


def assert_frozen(module, what):
    """Every BN in eval mode, no parameter requires grad."""
    bns = _bns(module, what)
    problems = []
    training_bn = [n for n, m in bns if m.training]
    if training_bn:
        problems.append(f'{len(training_bn)} of {len(bns)} BN layers in '
                        f'training mode after train(): {training_bn[:4]}')
    trainable = [n for n, p in module.named_parameters() if p.requires_grad]
    if trainable:
        problems.append(f'{len(trainable)} parameters require grad: '
                        f'{trainable[:4]}')
    assert not problems, f'{what}: ' + '; '.join(problems)


def _blocks(net):
    return [m for m in net.modules() if hasattr(m, 'conv2')
            and hasattr(m, 'downsample')]


def _spatial_conv(block):
    """The 3x3 conv: conv2 of a Bottleneck, conv1 of a BasicBlock."""
    return block.conv2 if hasattr(block, 'conv3') else block.conv1


def assert_pytorch_style(net, layer, what):
    """Stride of the first block of ``layer`` in its 3x3 conv (torchvision),
    not in the 1x1 conv1 (caffe)."""
    first = getattr(net, layer)[0]
    assert _spatial_conv(first).stride == (2, 2), \
        f'{what}: {layer}[0] 3x3 conv stride {_spatial_conv(first).stride}'
    if hasattr(first, 'conv3'):
        assert first.conv1.stride == (1, 1), \
            f'{what}: {layer}[0].conv1 stride {first.conv1.stride} (caffe)'
        assert first.conv3.stride == (1, 1)
    down = first.downsample[0]  # avg_down=False: a strided 1x1 conv
    assert isinstance(down, torch.nn.Conv2d) and down.stride == (2, 2), \
        f'{what}: {layer}[0].downsample starts with {down}'


def assert_7x7_stem(net, what):
    assert not hasattr(net, 'stem'), f'{what}: deep (3x 3x3) stem'
    assert net.conv1.kernel_size == (7, 7) and net.conv1.stride == (2, 2), \
        f'{what}: conv1 {net.conv1}'
    assert isinstance(net.norm1, _BatchNorm)


def assert_last_bn_init(net, zero, what):
    """After init_weights: each block's last BN weight is 0 if ``zero``
    (zero_init_residual) else 1."""
    want = 0. if zero else 1.
    for block in _blocks(net):
        last = block.norm3 if hasattr(block, 'conv3') else block.norm2
        assert torch.all(last.weight == want), \
            f'{what}: last BN weight {last.weight[:3].tolist()}, want {want}'


# --- the tests ------------------------------------------------------------
def test_every_downstream_config_is_found():
    """The glob finds the benchmark families and the two demo fine-tunings;
    the demo's other configs are pre-training ones."""
    kinds = set(CONFIGS.values())
    assert kinds == {'det', 'seg', 'linear', 'davis'}
    for path, kind in DEMO_DOWNSTREAM.items():
        assert CONFIGS.get(path) == kind, path
    for p in glob.glob(osp.join(ROOT, 'configs', 'demo', '*.py')):
        if _rel(p) not in CONFIGS:
            assert load(_rel(p)).model.type in ('DenseCL', 'MoCoV2'), p
    assert len(BENCHMARKS) >= 14  # 5 det + 6 seg + 2 linear + 1 DAVIS


@pytest.mark.parametrize('path', list(CONFIGS))
def test_resnet_choices_are_explicit(path):
    """No ResNet choice falls back on a default of mmdet's / mmseg's ResNet
    or of their base configs (all stated in our own files)."""
    cfg = load(path)
    kind = CONFIGS[path]
    assert kind_of(cfg) == kind, (path, cfg.get('default_scope'))
    bb = backbone_cfg(cfg)
    missing = [k for k in EXPLICIT if k not in bb]
    if kind == 'seg':
        missing += [k for k in ('contract_dilation', ) if k not in bb]
    assert not missing, f'{path}: implicit {missing}'
    assert bb.type in ('ResNet', 'mmdet.ResNet')
    assert bb.style == 'pytorch' and bb.deep_stem is False
    assert bb.avg_down is False and bb.init_cfg is None
    if kind in ('det', 'seg'):
        assert (bb.frozen_stages, bb.norm_eval) == (-1, False)
        assert bb.norm_cfg.requires_grad is True
    else:
        assert bb.frozen_stages == bb.num_stages and bb.norm_eval is True
        assert bb.norm_cfg.requires_grad is False
    head = cfg.get('model', {}).get('roi_head', {}).get('shared_head')
    if head is not None:
        assert (head.style, head.norm_eval, head.norm_cfg.requires_grad,
                head.stride, head.dilation) == ('pytorch', False, True, 2, 1)
    if path in BENCHMARKS:
        assert bb.zero_init_residual is PROTOCOL_ZERO_INIT[kind], path


@pytest.mark.parametrize('path', list(CONFIGS))
def test_built_model_bn_mode_after_train(path):
    cfg = load(path)
    kind = CONFIGS[path]
    model = build(cfg)
    model.train()
    if kind in ('det', 'seg'):
        for name, part in resnet_parts(model, kind).items():
            assert_fine_tunes(part, f'{path} {name}')
        assert model.backbone.frozen_stages == -1
    else:
        assert_frozen(model.backbone, f'{path} backbone')
        if kind == 'linear':
            assert model.head.training and model.head.weight.requires_grad
        # the backbone options alone (without LinearClassifier's /
        # Res4Encoder's own freezing) freeze it as well
        bare = in_train_mode(build_part(cfg, backbone_cfg(cfg)))
        assert_frozen(bare, f'{path} bare backbone')


@pytest.mark.parametrize('path', list(CONFIGS))
def test_built_resnet_layout(path):
    """style='pytorch', 7x7 stem, strided 1x1 shortcut, strides/dilations."""
    cfg = load(path)
    kind = CONFIGS[path]
    model = build(cfg)
    net = model.backbone
    assert_7x7_stem(net, path)
    assert_pytorch_style(net, 'layer2', path)
    bb = backbone_cfg(cfg)
    assert len(net.res_layers) == bb.num_stages
    if kind == 'seg':  # D8: layer3/4 not strided but dilated 2/4
        for layer, d in (('layer3', 2), ('layer4', 4)):
            blocks = list(getattr(net, layer))
            assert all(_spatial_conv(b).stride == (1, 1) for b in blocks)
            assert blocks[0].downsample[0].stride == (1, 1)
            # contract_dilation: the first block uses half the dilation
            dil = [_spatial_conv(b).dilation for b in blocks]
            assert dil == [(d // 2, ) * 2] + [(d, d)] * (len(blocks) - 1), \
                f'{path} {layer} dilations {dil}'
    elif kind == 'davis':  # layer3 at stride 1: res4 at stride 8
        assert not hasattr(net, 'layer4')
        assert all(_spatial_conv(b).stride == (1, 1) and
                   _spatial_conv(b).dilation == (1, 1) for b in net.layer3)
    else:  # det / linear: plain strides 2 in layer2..layer4
        for layer in net.res_layers[1:]:
            assert_pytorch_style(net, layer, path)
    shared = getattr(getattr(model, 'roi_head', None), 'shared_head', None)
    if shared is not None:  # C4: res5 in the RoI head, torchvision style
        assert not hasattr(net, 'layer4')
        assert_pytorch_style(shared, 'layer4', f'{path} shared head')
        assert isinstance(shared.extra_norm, _BatchNorm)


def _distinct_backbones():
    seen, out = set(), []
    for path in CONFIGS:
        key = repr(backbone_cfg(load(path)))
        if key not in seen:
            seen.add(key)
            out.append(path)
    return out


@pytest.mark.parametrize('path', _distinct_backbones())
def test_zero_init_residual_effect(path):
    """A random init (no checkpoint) gives each block's last BN the weight
    the config's ``zero_init_residual`` says (1 for the detection, linear
    and DAVIS protocols, 0 for mmseg's)."""
    cfg = load(path)
    bb = backbone_cfg(cfg)
    net = build_part(cfg, bb)
    torch.manual_seed(0)
    net.init_weights()
    assert_last_bn_init(net, bb.zero_init_residual, path)


def test_davis_config_encoder_is_res4_backbone_cfg():
    from densecl_plugin.evaluation.davis import res4_backbone_cfg
    path = next(p for p, k in CONFIGS.items() if k == 'davis')
    assert Config(dict(e=res4_backbone_cfg())).e == load(path).encoder


# --- each helper catches the mistake it is for ----------------------------
DEMO_DET = 'configs/demo/faster-rcnn_r18-fpn_1xb4-60iters_deepforest-voc.py'
DEMO_SEG = 'configs/demo/fcn_r18-d8_1xb8-120iters_stardist-nuclei.py'
C4 = 'configs/benchmarks/mmdetection/voc0712/' \
     'faster-rcnn_r50-c4_8xb2-24k_voc0712.py'
LINEAR = 'configs/benchmarks/classification/folder/' \
         'resnet18_linear-1xb32-steplr-10e_folder-64px.py'


def changed_backbone(path, change):
    """The backbone of ``path`` with ``change`` applied, in training mode."""
    cfg = load(path)
    cfg.model.backbone.update(change)
    return in_train_mode(build_part(cfg, cfg.model.backbone))


@pytest.mark.parametrize('path', [DEMO_DET, DEMO_SEG])
@pytest.mark.parametrize('change,match', [
    (dict(norm_eval=True), 'BN layers in eval mode'),
    (dict(frozen_stages=1), 'parameters with requires_grad=False'),
    (dict(norm_cfg=dict(type='BN', requires_grad=False)),
     'BN without trainable affine'),
])
def test_fine_tune_check_catches_frozen_bn(path, change, match):
    net = changed_backbone(path, change)  # e.g. mmdet's norm_eval=True
    with pytest.raises(AssertionError, match=match):
        assert_fine_tunes(net, path)


def test_fine_tune_check_catches_a_frozen_c4_backbone_and_shared_head():
    cfg = load(C4)
    bb = cfg.model.backbone
    bb.norm_eval = True  # mmdet ResNet's default, with the config's SyncBN
    with pytest.raises(AssertionError, match='BN layers in eval mode'):
        assert_fine_tunes(in_train_mode(build_part(cfg, bb)), C4)
    head_cfg = cfg.model.roi_head.shared_head
    assert_fine_tunes(in_train_mode(build_part(cfg, head_cfg)), 'ok')
    # mmdet's ResLayer.train() only puts nn.BatchNorm2d in eval mode, so
    # its default norm_eval=True would be silent with SyncBN; with BN:
    head_cfg.update(norm_eval=True, norm_cfg=dict(type='BN'))
    with pytest.raises(AssertionError, match='BN layers in eval mode'):
        assert_fine_tunes(in_train_mode(build_part(cfg, head_cfg)), C4)


@pytest.mark.parametrize('change,match', [
    (dict(norm_eval=False, frozen_stages=-1), 'BN layers in training mode'),
    (dict(frozen_stages=-1), 'parameters require grad'),
])
def test_frozen_check_catches_training_bn(change, match):
    net = changed_backbone(LINEAR, change)
    with pytest.raises(AssertionError, match=match):
        assert_frozen(net, LINEAR)


def test_layout_checks_catch_caffe_style_deep_stem_and_zero_init():
    cfg = load(LINEAR)
    bb = cfg.model.backbone
    bb.depth = 50  # Bottleneck: caffe style moves the stride to conv1
    with pytest.raises(AssertionError, match=r'3x3 conv stride \(1, 1\)'):
        assert_pytorch_style(
            build_part(cfg, dict(bb, style='caffe')), 'layer2', 'caffe')
    bb.depth = 18
    with pytest.raises(AssertionError, match='deep'):
        assert_7x7_stem(build_part(cfg, dict(bb, deep_stem=True)), 'v1c')
    with pytest.raises(AssertionError, match='downsample starts with'):
        assert_pytorch_style(build_part(cfg, dict(bb, avg_down=True)),
                             'layer2', 'v1d')
    net = build_part(cfg, dict(bb, zero_init_residual=True))
    net.init_weights()
    with pytest.raises(AssertionError, match='want 1.0'):
        assert_last_bn_init(net, False, 'zero init')
