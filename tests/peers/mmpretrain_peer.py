# Copyright (c) densecl_plugin contributors. All rights reserved.
"""mmpretrain 1.2.0 as a peer: import it, build its DenseCL / MoCo from ours.

The logic is :mod:`densecl_lab.benchmarks.peer` (which
``tools/analysis/benchmark_step.py --peer`` also runs); this module only
passes it the torchvision stand-in of this folder (see README.md here).
"""
import os.path as osp

from densecl_lab.benchmarks import peer as _peer
from densecl_lab.benchmarks.peer import peer_backbone  # noqa: F401

STANDIN = osp.join(osp.dirname(osp.abspath(__file__)), 'standin')


def import_mmpretrain():
    """``mmpretrain`` with its models registered, torchvision or not."""
    return _peer.import_mmpretrain(STANDIN)


def build_peer(ours, depth: int):
    """mmpretrain's DenseCL or MoCo with our model's hyper-parameters and
    state (:func:`densecl_lab.benchmarks.peer.build_peer`), loaded
    strictly, in train mode."""
    return _peer.build_peer(ours, depth, STANDIN)
