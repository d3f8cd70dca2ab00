# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The DenseCL / MoCo v2 pair that the benchmarks measure side by side.

Both algorithms get the same ``mmdet.ResNet`` (the pre-training BN choices of
``configs/_base_/models/densecl_r50.py``), a neck as wide as the backbone's
last stage, the same head and queue length.
"""
import copy
from typing import Any, Dict

from torch import nn

#: the algorithms compared, with their necks
NECKS = {'DenseCL': 'DenseCLNeck', 'MoCoV2': 'MoCoV2Neck'}


def model_kwargs(algo: str, depth: int = 50, queue_len: int = 65536,
                 feat_dim: int = 128) -> Dict[str, Any]:
    """Constructor arguments of ``algo`` on a plain ResNet.

    Args:
        algo (str): ``'DenseCL'`` or ``'MoCoV2'``.
        depth (int): ResNet depth (18, 34, 50, 101). Defaults to 50.
        queue_len (int): ``K``. Defaults to 65536.
        feat_dim (int): ``D``. Defaults to 128.

    Returns:
        dict: ``backbone``, ``neck``, ``head``, ``queue_len``, ``feat_dim``
        and ``data_preprocessor=None`` (a fresh copy each call).
    """
    if algo not in NECKS:
        raise ValueError(f"algo must be 'DenseCL' or 'MoCoV2', got {algo!r}")
    C = 512 if depth < 50 else 2048
    return copy.deepcopy(dict(
        backbone=dict(type='mmdet.ResNet', norm_eval=False, depth=depth,
                      out_indices=(3, ), norm_cfg=dict(type='BN'),
                      zero_init_residual=False),
        neck=dict(type=NECKS[algo], in_channels=C, hid_channels=C,
                  out_channels=feat_dim),
        head=dict(type='ContrastiveHead', temperature=0.2),
        queue_len=queue_len, feat_dim=feat_dim, data_preprocessor=None))


def build_benchmark_model(algo: str, depth: int = 50,
                          queue_len: int = 65536,
                          feat_dim: int = 128) -> nn.Module:
    """``DenseCL`` or ``MoCoV2`` built from :func:`model_kwargs` (weights
    not initialised): the benchmarks' model of an algorithm, not a config's
    (that is :func:`densecl_plugin.apis.inference.build_model`)."""
    from densecl_plugin.models import DenseCL, MoCoV2
    cls = {'DenseCL': DenseCL, 'MoCoV2': MoCoV2}.get(algo)
    return cls(**model_kwargs(algo, depth, queue_len, feat_dim))
