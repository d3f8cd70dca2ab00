# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Datasets, transforms and the data sample of DenseCL pre-training."""
from .self_sup_data_sample import SelfSupDataSample
from .transforms import *  # noqa: F401,F403 (registers the transforms)
from .unlabeled_image_dataset import BadImageError, UnlabeledImageDataset

__all__ = ['SelfSupDataSample', 'UnlabeledImageDataset', 'BadImageError']
