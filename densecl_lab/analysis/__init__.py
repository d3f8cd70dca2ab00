# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Offline analysis of finished or running pre-training runs (nothing here is
registered; matplotlib is imported only when a figure is drawn)."""
from .dense_pca import (PCA, c5_maps, dense_pca_checkpoints, dense_pca_figure,
                        fit_pca, pca_rgb)
from .embed import FEATURES, embed_folder, embed_images, load_image
from .pretraining_diagnosis import (Rules, compare_figure, diagnose,
                                    diagnose_work_dir, find_scalars,
                                    load_scalars, plot_health, plot_runs)
from .view_pair_probe import (METRICS, embed_view_pairs, folder_images,
                              format_probe, list_images, pair_metrics, pick,
                              probe_checkpoints, probe_model)

__all__ = ['FEATURES', 'METRICS', 'PCA', 'Rules', 'c5_maps', 'compare_figure',
           'dense_pca_checkpoints', 'dense_pca_figure', 'diagnose',
           'diagnose_work_dir', 'embed_folder', 'embed_images',
           'embed_view_pairs', 'find_scalars', 'fit_pca', 'folder_images',
           'format_probe', 'list_images', 'load_image', 'load_scalars',
           'pair_metrics', 'pca_rgb', 'pick', 'plot_health', 'plot_runs',
           'probe_checkpoints', 'probe_model']
