# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Models: algorithms, necks, heads, losses and their building blocks."""
from .algorithms import *  # noqa: F401,F403
from .data_preprocessor import SelfSupDataPreprocessor  # noqa: F401
from .heads import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
from .utils import *  # noqa: F401,F403
