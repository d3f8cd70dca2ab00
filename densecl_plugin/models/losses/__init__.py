# Copyright (c) densecl_plugin contributors. All rights reserved.
from .queue_infonce_loss import queue_infonce_loss

__all__ = ['queue_infonce_loss']
