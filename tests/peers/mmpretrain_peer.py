# Copyright (c) densecl_plugin contributors. All rights reserved.
"""mmpretrain 1.2.0 as a peer: import it, build its DenseCL / MoCo from ours.

See README.md here for why a torchvision stand-in may be put on the path.
"""
import copy
import importlib
import os.path as osp
import sys

STANDIN = osp.join(osp.dirname(osp.abspath(__file__)), 'standin')


def import_mmpretrain():
    """``mmpretrain`` with its models registered, torchvision or not."""
    try:
        import torchvision.ops.boxes  # noqa: F401
        import torchvision.transforms.functional  # noqa: F401
    except Exception:  # none, or a build for another torch ('nms does not exist')
        for name in [m for m in sys.modules if m.split('.')[0] == 'torchvision']:
            del sys.modules[name]
        if STANDIN not in sys.path:
            sys.path.insert(0, STANDIN)
    try:
        mmpretrain = importlib.import_module('mmpretrain')
        importlib.import_module('mmpretrain.models')
    except ImportError as e:
        raise ImportError(
            f'the parity tests need mmpretrain==1.2.0 (requirements/tests.txt; '
            f'`make test` installs it): {e}') from e
    assert mmpretrain.__version__ == '1.2.0', mmpretrain.__version__
    return mmpretrain


def peer_backbone(depth: int) -> dict:
    """mmpretrain's own ResNet (its defaults: BN trains, nothing frozen)."""
    return dict(type='ResNet', depth=depth, out_indices=(3, ), norm_cfg=dict(type='BN'),
                zero_init_residual=False)


def build_peer(ours, depth: int):
    """mmpretrain's DenseCL or MoCo with our model's hyper-parameters and state.

    Args:
        ours (DenseCL | MoCoV2): our model.
        depth (int): its ResNet depth.

    Returns:
        nn.Module: the mmpretrain model, ``load_state_dict(strict=True)``-ed
        from ``ours`` (so every key and shape must match), in train mode.
    """
    import_mmpretrain()
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    from densecl_plugin.models import DenseCL
    is_dense = isinstance(ours, DenseCL)
    C = ours.neck.in_channels
    hid = ours.neck.mlp[0].out_features
    neck = dict(type='DenseCLNeck' if is_dense else 'MoCoV2Neck', in_channels=C,
                hid_channels=hid, out_channels=ours.D)
    if not is_dense:
        neck['with_avg_pool'] = True
    cfg = dict(
        type='DenseCL' if is_dense else 'MoCo',
        backbone=peer_backbone(depth),
        neck=neck,
        head=dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'),
                  temperature=ours.head.temperature),
        queue_len=ours.K, feat_dim=ours.D,
        momentum=1 - ours.encoder_k.m)  # mmpretrain's convention
    if is_dense:
        cfg['loss_lambda'] = ours.loss_lambda
    # A runner built earlier in the session leaves its default scope
    # (``densecl_plugin``) current; the peer's nested builds must resolve in
    # mmpretrain's registries, not ours.
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        peer = MODELS.build(copy.deepcopy(cfg))
    peer.load_state_dict(ours.state_dict(), strict=True)
    return peer.train()
