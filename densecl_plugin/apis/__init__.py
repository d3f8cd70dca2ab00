# Copyright (c) densecl_plugin contributors. All rights reserved.
from .inference import (ImageViewMatches, backbone_c5, build_model,
                        load_backbone_checkpoint, load_config, make_views,
                        match_image_views, quiet_init_weights)
from .train import build_train_config, train

__all__ = ['ImageViewMatches', 'backbone_c5', 'build_model',
           'build_train_config', 'load_backbone_checkpoint', 'load_config',
           'make_views', 'match_image_views', 'quiet_init_weights',
           'train']
