# Copyright (c) densecl_plugin contributors. All rights reserved.
"""DenseCL (Dense Contrastive Learning, Wang et al., CVPR 2021) for MMEngine.

Importing the package checks the OpenMMLab stack (see
:mod:`densecl_plugin.utils.dependency`) and lets ``torch.load`` read
MMEngine's own checkpoints safely (see
:mod:`densecl_plugin.utils.checkpoint`); it registers no modules: those are
imported lazily by the registries in :mod:`densecl_plugin.registry`.
"""
import os

from .utils.checkpoint import allow_mmengine_checkpoints
from .utils.dependency import DependencyError, check_dependencies
from .version import __version__

if os.environ.get('DENSECL_PLUGIN_SKIP_VERSION_CHECK', '0') != '1':
    check_dependencies()
allow_mmengine_checkpoints()

__all__ = ['__version__', 'check_dependencies', 'DependencyError',
           'allow_mmengine_checkpoints']
