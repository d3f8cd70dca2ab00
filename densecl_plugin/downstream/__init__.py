# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Transfer to mmdet / mmseg: what their benchmark configs need from us
(via ``custom_imports``), and the tools that run those benchmarks.

- :class:`DenseCLPretrained` (our ``WEIGHT_INITIALIZERS``, referred to as
  ``densecl_plugin.DenseCLPretrained`` from mmdet/mmseg configs);
- :class:`DenseCLResLayerExtraNorm` (registered in mmdet's ``MODELS``),
  imported only when mmdet is installed, so that mmseg-only setups work;
- :func:`run_transfer` and :data:`BENCHMARKS`: run benchmarks, tabulate
  (:func:`run_transfer_cli`: what ``tools/benchmarks/run_transfer.py`` runs).
"""
import importlib.util

from .densecl_pretrained import (CHECKPOINT_OPTION, DenseCLPretrained,
                                 check_pretrained)
from .transfer import BENCHMARKS, Benchmark, run_transfer, run_transfer_cli

__all__ = [
    'BENCHMARKS', 'Benchmark', 'CHECKPOINT_OPTION', 'DenseCLPretrained',
    'check_pretrained', 'run_transfer', 'run_transfer_cli'
]

if importlib.util.find_spec('mmdet') is not None:
    from .densecl_res_layer_extra_norm import \
        DenseCLResLayerExtraNorm  # noqa: F401
    __all__.append('DenseCLResLayerExtraNorm')
