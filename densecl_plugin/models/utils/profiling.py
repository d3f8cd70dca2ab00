# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Named profiler regions that cost nothing when no profiler runs."""
import contextlib
from typing import ContextManager

import torch

_NULL = contextlib.nullcontext()
#: what the profiler's event names of the regions start with
PREFIX = 'region::'


def region(name: str) -> ContextManager:
    """``torch.profiler.record_function(name)`` while a profiler records,
    else a shared no-op context (one flag read, no allocation).

    The step profiler (:mod:`densecl_plugin.benchmarks.step_profile`)
    groups the ops of a step by these regions; outside it a model pays
    only the check of :func:`torch.autograd._profiler_enabled`.

    Args:
        name (str): The region's name (the event is named
            ``'region::' + name``).

    Returns:
        ContextManager: The region, or a no-op.
    """
    if torch.autograd._profiler_enabled():
        return torch.profiler.record_function(PREFIX + name)
    return _NULL
