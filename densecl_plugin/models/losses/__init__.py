# Copyright (c) densecl_plugin contributors. All rights reserved.
from .queue_infonce_loss import QueueInfoNCELoss, queue_infonce_loss

__all__ = ['QueueInfoNCELoss', 'queue_infonce_loss']
