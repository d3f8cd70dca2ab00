# Copyright (c) densecl_plugin contributors. All rights reserved.
from .train import build_train_config, train

__all__ = ['build_train_config', 'train']
