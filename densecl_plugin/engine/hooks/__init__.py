# Copyright (c) densecl_plugin contributors. All rights reserved.
from .densecl_hook import DenseCLHook

__all__ = ['DenseCLHook']
