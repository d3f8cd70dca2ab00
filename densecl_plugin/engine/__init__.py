# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Engine: hooks and optim wrappers."""
from .hooks import *  # noqa: F401,F403
from .optim_wrappers import *  # noqa: F401,F403
