# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Drawing DenseCL's dense correspondences between two views.

:class:`CorrespondenceVisualizer` (registered) is MMEngine's visualizer
that also draws the matches ``CorrespondenceHook`` hands it; matplotlib is
imported only when a figure is drawn. The figure tool built on these
(``tools/analysis/visualize_correspondence.py``) lives in the lab,
:mod:`densecl_lab.analysis.visualize_correspondence`.
"""
from .correspondence_figures import (default_cells, draw_matches,
                                     draw_similarity_maps, save_png,
                                     to_rgb_image)
from .correspondence_visualizer import CorrespondenceVisualizer

__all__ = ['CorrespondenceVisualizer', 'draw_matches', 'draw_similarity_maps',
           'default_cells', 'save_png', 'to_rgb_image']
