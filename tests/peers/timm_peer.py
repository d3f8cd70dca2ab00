# Copyright (c) densecl_plugin contributors. All rights reserved.
"""timm as a peer: its own ResNet, torchvision or not (see README.md here).

PyPI's torchvision for torch 2.13 (0.28.0) installs beside the CPU torch but
does not import ('operator torchvision::nms does not exist'); timm imports
torchvision names at module level that its ResNet never calls. When the
installed torchvision does not import, this folder's ``standin`` is put first
on ``sys.path`` (calling any of its names raises).
"""
import importlib
import os.path as osp
import sys

STANDIN = osp.join(osp.dirname(osp.abspath(__file__)), 'standin')


def import_timm():
    """``timm``, with the torchvision stand-in where torchvision fails.

    Returns:
        tuple[module, bool]: timm, and whether the stand-in was used.
    """
    try:
        import torchvision.ops.misc  # noqa: F401
        import torchvision.transforms.functional  # noqa: F401
        used = torchvision.__version__.endswith('+standin')  # mmpretrain's
    except Exception:  # none, or built for another torch
        used = True
        for name in [m for m in sys.modules
                     if m.split('.')[0] == 'torchvision']:
            del sys.modules[name]
        if STANDIN not in sys.path:
            sys.path.insert(0, STANDIN)
    return importlib.import_module('timm'), used
