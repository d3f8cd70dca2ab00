# Copyright (c) densecl_plugin contributors. All rights reserved.
from .correspondence_hook import CorrespondenceHook
from .densecl_hook import DenseCLHook

__all__ = ['DenseCLHook', 'CorrespondenceHook']
