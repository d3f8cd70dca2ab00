# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Measurement: what the tools under ``tools/analysis/`` run.

- :mod:`.step`: step time and peak memory of DenseCL against MoCo v2, and of
  the dense loss alone (``benchmark_step.py``); :mod:`.options`: the speed
  options (AMP, channels-last, ``torch.compile``) compared
  (``benchmark_step.py --options``);
- :mod:`.flops`: FLOPs and bytes of a step, and the run time they imply
  (``flops.py``);
- :mod:`.pipeline`: images/s of the two-view data pipeline, side by side
  with an earlier revision's transforms (``benchmark_pipeline.py``);
- :mod:`.models`: the DenseCL / MoCo v2 pair they all measure.
"""
from .flops import (GPU_PEAK_TFLOPS, IMAGENET_TRAIN, count_flops,
                    implied_efficiency, loss_costs, run_flops_estimate,
                    run_time, step_costs)
from .models import build_model, model_kwargs
from .options import (AMP_DTYPES, OPTIONS, benchmark_options,
                      format_options_report, option_variants)
from .pipeline import (DEFAULT_CONFIG, Variant, load_baseline_transforms,
                       measure_single, measure_workers, reduced_decode_study,
                       run_pipeline_benchmark, timed_pipeline)
from .step import (benchmark_dense_loss, benchmark_models, build_models,
                   format_report, grid_cells, peak_memory, precision_step,
                   run_step_benchmark, state_bytes, train_step)

__all__ = [
    'AMP_DTYPES', 'DEFAULT_CONFIG', 'GPU_PEAK_TFLOPS', 'IMAGENET_TRAIN',
    'OPTIONS', 'Variant', 'benchmark_dense_loss', 'benchmark_models',
    'benchmark_options', 'build_model', 'build_models', 'count_flops',
    'format_options_report', 'format_report', 'grid_cells',
    'implied_efficiency', 'load_baseline_transforms', 'loss_costs',
    'measure_single', 'measure_workers', 'model_kwargs', 'option_variants',
    'peak_memory', 'precision_step', 'reduced_decode_study',
    'run_flops_estimate', 'run_pipeline_benchmark', 'run_step_benchmark',
    'run_time', 'state_bytes', 'step_costs', 'timed_pipeline', 'train_step'
]
