# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Offline analysis of finished or running pre-training runs (nothing here is
registered; matplotlib is imported only when a figure is drawn)."""
from .pretraining_diagnosis import (Rules, diagnose, diagnose_work_dir,
                                    find_scalars, load_scalars, plot_health)

__all__ = ['Rules', 'diagnose', 'diagnose_work_dir', 'find_scalars',
           'load_scalars', 'plot_health']
