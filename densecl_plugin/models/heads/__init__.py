# Copyright (c) densecl_plugin contributors. All rights reserved.
from .contrastive_head import ContrastiveHead

__all__ = ['ContrastiveHead']
