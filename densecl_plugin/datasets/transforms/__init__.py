# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Data transforms of DenseCL pre-training (registered in our scope)."""
from .formatting import PackSelfSupInputs, image_to_tensor
from .geometric import (RandomFlip, RandomResizedCrop, get_view_record,
                        view_box_to_image_box)
from .loading import LoadImageFromFile
from .photometric import (ColorJitter, GaussianBlur, RandomGrayscale,
                          adjust_brightness, adjust_contrast, adjust_hue,
                          adjust_saturation, gaussian_blur, to_grayscale)
from .views import MultiView, build_pipeline

__all__ = [
    'LoadImageFromFile', 'MultiView', 'build_pipeline', 'RandomResizedCrop',
    'RandomFlip', 'get_view_record', 'view_box_to_image_box', 'ColorJitter',
    'RandomGrayscale', 'GaussianBlur', 'adjust_brightness', 'adjust_contrast',
    'adjust_saturation', 'adjust_hue', 'to_grayscale', 'gaussian_blur',
    'PackSelfSupInputs', 'image_to_tensor'
]
