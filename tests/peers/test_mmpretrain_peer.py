# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The peer helper itself: it must build mmpretrain's model whatever the
default scope (CI once ran the parity tests after a test that had built an
MMEngine ``Runner``, which leaves ``densecl_plugin`` as the current scope,
and every peer build failed with "ResNet is not in the densecl_plugin::model
registry")."""
import os.path as osp
import sys

import pytest

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from mmpretrain_peer import build_peer, import_mmpretrain  # noqa: E402

from tiny_models import build_tiny_model  # noqa: E402


def test_peer_builds_under_our_default_scope():
    from mmengine.registry import DefaultScope
    import_mmpretrain()
    from mmpretrain.registry import MODELS
    ours = build_tiny_model('DenseCL', hid_channels=8, feat_dim=8, queue_len=8)
    name = 'test_peer_builds_under_our_default_scope'
    DefaultScope.get_instance(name, scope_name='densecl_plugin')
    try:
        # the condition that broke CI: a bare build resolves in our registry
        with pytest.raises(KeyError, match='densecl_plugin::model'):
            MODELS.build(dict(type='ResNet', depth=18))
        peer = build_peer(ours, 18)
    finally:
        DefaultScope._instance_dict.pop(name, None)
    assert type(peer).__module__ == 'mmpretrain.models.selfsup.densecl'
    assert peer.training
