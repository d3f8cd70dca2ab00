# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Optimizer wrappers (registered in our ``OPTIM_WRAPPERS``)."""
from .cpu_amp_optim_wrapper import CPUAmpOptimWrapper

__all__ = ['CPUAmpOptimWrapper']
