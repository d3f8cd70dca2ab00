# Copyright (c) densecl_plugin contributors. All rights reserved.
from .base import BaseMomentumContrast
from .densecl import DenseCL
from .mocov2 import MoCoV2

__all__ = ['BaseMomentumContrast', 'DenseCL', 'MoCoV2']
