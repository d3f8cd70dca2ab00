# Copyright (c) densecl_plugin contributors. All rights reserved.
"""mmpretrain's own DenseCL / MoCo v2 config text ports by ``type`` prefixes.

The configs are read from the installed mmpretrain 1.2.0 (``.mim/configs``),
``_base_`` files and all. Only ``type`` values change: our components get
``densecl_plugin.``, the rest (its ``ResNet``, ``CrossEntropyLoss``) get
``mmpretrain.``; every argument, ``momentum=0.001`` in mmpretrain's
convention included, stays. The ported model has the peer's state-dict
layout and computes the peer's loss on the same input.
"""
import copy
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))), 'peers'))
from mmpretrain_peer import import_mmpretrain  # noqa: E402

OURS = {'DenseCL', 'MoCo', 'DenseCLNeck', 'MoCoV2Neck', 'ContrastiveHead',
        'SelfSupDataPreprocessor'}
CONFIGS = {
    'DenseCL': 'densecl/densecl_resnet50_8xb32-coslr-200e_in1k.py',
    'MoCo': 'mocov2/mocov2_resnet50_8xb32-coslr-200e_in1k.py',
}


def port(node):
    """Prefix every ``type``: ours -> ``densecl_plugin.``, else ``mmpretrain.``."""
    if isinstance(node, dict):
        out = {k: port(v) for k, v in node.items()}
        if isinstance(out.get('type'), str) and '.' not in out['type']:
            scope = 'densecl_plugin' if out['type'] in OURS else 'mmpretrain'
            out['type'] = f"{scope}.{out['type']}"
        return out
    if isinstance(node, (list, tuple)):
        return type(node)(port(v) for v in node)
    return node


def _peer_config(algo):
    mmpretrain = import_mmpretrain()
    root = osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'configs')
    cfg = Config.fromfile(osp.join(root, CONFIGS[algo]))
    model = cfg.model.to_dict()
    model.setdefault('data_preprocessor', cfg.data_preprocessor.to_dict())  # as Runner
    return model


@pytest.mark.parametrize('algo', sorted(CONFIGS))
def test_mmpretrain_config_ports_by_type_prefix(algo):
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS as PEER_MODELS

    from densecl_plugin.models import DenseCL, MoCoV2
    from densecl_plugin.registry import MODELS
    peer_cfg = _peer_config(algo)
    ported = port(copy.deepcopy(peer_cfg))
    assert ported['momentum'] == 0.001  # unchanged: mmpretrain's convention
    with pytest.warns(UserWarning, match="mmpretrain's inverted convention"):
        ours = MODELS.build(ported)
    assert isinstance(ours, DenseCL if algo == 'DenseCL' else MoCoV2)
    assert ours.encoder_k.m == pytest.approx(0.999)
    assert type(ours.backbone).__module__.startswith('mmpretrain.')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        peer = PEER_MODELS.build(copy.deepcopy(peer_cfg))
    peer.load_state_dict(ours.state_dict(), strict=True)  # same layout
    ours.train(), peer.train()
    g = torch.Generator().manual_seed(0)
    views = [torch.randn(4, 3, 64, 64, generator=g) for _ in range(2)]
    torch.manual_seed(0)
    with torch.no_grad():
        l_o = ours(views, None, mode='loss')
    torch.manual_seed(0)
    with torch.no_grad():
        l_p = peer(views, None, mode='loss')
    assert set(l_o) == set(l_p)
    for key in l_o:
        torch.testing.assert_close(l_o[key], l_p[key], rtol=1e-5, atol=1e-5)
    # the preprocessor ported too, with mmpretrain's arguments
    batch = dict(inputs=[torch.randint(0, 255, (2, 3, 8, 8), dtype=torch.uint8)] * 2,
                 data_samples=None)
    out_o = ours.data_preprocessor(copy.deepcopy(batch))['inputs']
    out_p = peer.data_preprocessor(copy.deepcopy(batch))['inputs']
    for a, b in zip(out_o, out_p):
        torch.testing.assert_close(a, b)


def test_head_loss_options_beyond_plain_cross_entropy_are_refused():
    from densecl_plugin.models import ContrastiveHead
    assert ContrastiveHead(loss=dict(type='mmpretrain.CrossEntropyLoss')).loss_weight == 1
    head = ContrastiveHead(loss=dict(type='CrossEntropyLoss', loss_weight=2.0))
    q, k, queue = torch.randn(3, 4), torch.randn(3, 4), torch.randn(4, 5)
    torch.testing.assert_close(head.loss_queue(q, k, queue),
                               2 * ContrastiveHead().loss_queue(q, k, queue))
    with pytest.raises(ValueError, match='label_smooth_val'):
        ContrastiveHead(loss=dict(type='CrossEntropyLoss', label_smooth_val=0.1))
    with pytest.raises(ValueError, match='use_sigmoid=True is not supported'):
        ContrastiveHead(loss=dict(type='CrossEntropyLoss', use_sigmoid=True))
    with pytest.raises(ValueError, match="'FocalLoss' is not supported"):
        ContrastiveHead(loss=dict(type='FocalLoss'))


def test_mocov2_neck_without_avg_pool_takes_pooled_features():
    from densecl_plugin.models import MoCoV2Neck
    torch.manual_seed(0)
    pooled = MoCoV2Neck(8, 16, 4, with_avg_pool=False)
    x = torch.randn(2, 8, 5, 5)
    ref = pooled.mlp(x.mean(dim=(2, 3)))  # an independent pooling
    torch.testing.assert_close(pooled([x.mean(dim=(2, 3), keepdim=True)])[0], ref)
    torch.testing.assert_close(pooled([x.mean(dim=(2, 3))])[0], ref)
    with pytest.raises(ValueError, match='with_avg_pool=False needs pooled'):
        pooled([x])
