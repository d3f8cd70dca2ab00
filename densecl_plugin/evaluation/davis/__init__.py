# Copyright (c) densecl_plugin contributors. All rights reserved.
"""DAVIS-2017 label propagation benchmark (CRW protocol) and J&F metrics."""
from .benchmark import load_benchmark_config, run_benchmark, write_tables
from .data import (annotation_paths, davis_palette, evaluate_folder,
                   frame_paths, list_sequences, load_masks, read_mask,
                   write_mask)
from .label_propagation import (Res4Encoder, build_res4_encoder,
                                context_indices, downsample_labels,
                                extract_features, propagate_labels,
                                propagate_sequence, res4_backbone_cfg,
                                run_davis, soft_labels_to_mask)
from .metrics import (db_eval_boundary, db_eval_iou, db_statistics, disk,
                      evaluate_results, evaluate_sequence, f_measure,
                      format_table, seg2bmap, sequence_rows, summarise)

__all__ = [
    'Res4Encoder', 'annotation_paths', 'build_res4_encoder',
    'context_indices', 'davis_palette', 'db_eval_boundary', 'db_eval_iou',
    'db_statistics', 'disk', 'downsample_labels', 'evaluate_folder',
    'evaluate_results', 'evaluate_sequence', 'extract_features', 'f_measure',
    'format_table', 'frame_paths', 'list_sequences', 'load_benchmark_config',
    'load_masks',
    'propagate_labels', 'propagate_sequence', 'read_mask',
    'res4_backbone_cfg', 'run_benchmark', 'run_davis', 'seg2bmap',
    'sequence_rows', 'soft_labels_to_mask',
    'summarise', 'write_mask', 'write_tables'
]
