# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Seeded random streams that leave the caller's streams untouched."""
import contextlib
import random

import numpy as np
import torch


@contextlib.contextmanager
def seeded(seed: int):
    """Seed ``random``, ``numpy`` and ``torch`` (CPU) inside the block and
    restore their previous states after it, so that drawing views in the
    middle of training leaves the training's random streams untouched.

    Args:
        seed (int): The seed of all three streams inside the block.
    """
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
