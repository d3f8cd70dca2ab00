# Copyright (c) densecl_plugin contributors. All rights reserved.
"""What mmdet/mmseg benchmark configs need from us, via ``custom_imports``.

- :class:`DenseCLPretrained` (our ``WEIGHT_INITIALIZERS``, referred to as
  ``densecl_plugin.DenseCLPretrained`` from mmdet/mmseg configs);
- :class:`DenseCLResLayerExtraNorm` (registered in mmdet's ``MODELS``),
  imported only when mmdet is installed, so that mmseg-only setups work.
"""
import importlib.util

from .densecl_pretrained import CHECKPOINT_OPTION, DenseCLPretrained, \
    check_pretrained

__all__ = ['CHECKPOINT_OPTION', 'DenseCLPretrained', 'check_pretrained']

if importlib.util.find_spec('mmdet') is not None:
    from .densecl_res_layer_extra_norm import DenseCLResLayerExtraNorm  # noqa
    __all__.append('DenseCLResLayerExtraNorm')
