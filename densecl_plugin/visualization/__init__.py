# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Visualisation: DenseCL's dense correspondences between two views.

Nothing here is registered; matplotlib is imported only when a figure is drawn.
The model-loading helpers (``build_model``, ``make_views``, ``backbone_c5``,
...) live in :mod:`densecl_plugin.apis.inference` and are re-exported here.
"""
from densecl_plugin.apis.inference import (backbone_c5, build_model,
                                           load_backbone_checkpoint,
                                           load_config, make_views)
from .correspondence_figures import (default_cells, draw_matches,
                                     draw_similarity_maps, save_png,
                                     to_rgb_image)
from .visualize_correspondence import visualize_correspondence

__all__ = ['draw_matches', 'draw_similarity_maps', 'default_cells',
           'save_png', 'to_rgb_image', 'build_model', 'make_views',
           'backbone_c5', 'load_config', 'load_backbone_checkpoint',
           'visualize_correspondence']
