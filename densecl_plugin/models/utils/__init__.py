# Copyright (c) densecl_plugin contributors. All rights reserved.
from .feature_map import last_feature_map
from .key_encoder import (MomentumEncoder, batch_shuffle_ddp,
                          batch_unshuffle_ddp, concat_all_gather, enqueue_)
from .split_bn import split_batchnorm, split_batchnorm_forward

__all__ = ['MomentumEncoder', 'enqueue_', 'concat_all_gather',
           'batch_shuffle_ddp', 'batch_unshuffle_ddp', 'last_feature_map',
           'split_batchnorm', 'split_batchnorm_forward']
