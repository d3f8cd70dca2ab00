# Copyright (c) densecl_plugin contributors. All rights reserved.
from .densecl_neck import DenseCLNeck, GlobalMLPNeck
from .mocov2_neck import MoCoV2Neck

__all__ = ['DenseCLNeck', 'GlobalMLPNeck', 'MoCoV2Neck']
