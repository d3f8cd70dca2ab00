# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Measurement: what the tools under ``tools/analysis/`` run.

- :mod:`.step`: step time and peak memory of DenseCL against MoCo v2, and of
  the dense loss alone; :mod:`.options`: the speed options (AMP,
  channels-last, ``torch.compile``) compared; :mod:`.step_benchmark`: what
  ``benchmark_step.py`` runs (either of them, ``--options`` the latter);
- :mod:`.flops`: FLOPs and bytes of a step, and the run time they imply
  (``flops.py``);
- :mod:`.pipeline`: images/s of the two-view data pipeline, side by side
  with an earlier revision's transforms (``benchmark_pipeline.py``): its
  single-core timing in :mod:`.pipeline_timing`, the earlier revision's
  transforms in :mod:`.baseline_transforms`;
- :mod:`.step_profile`: per-region profile of a DenseCL and a MoCo v2 step
  (``profile_step.py``);
- :mod:`.peer`: our steps against mmpretrain 1.2's DenseCL and MoCo
  (``benchmark_step.py --peer``; needs ``mmpretrain==1.2.0``);
- :mod:`.models`: the DenseCL / MoCo v2 pair they all measure;
- :mod:`.measure`: the helpers they share (:func:`~.measure.sync`,
  :func:`~.measure.mib`).
"""
from .baseline_transforms import Variant, load_baseline_transforms
from .flops import (GPU_PEAK_TFLOPS, IMAGENET_TRAIN, count_flops,
                    implied_efficiency, loss_costs, run_flops_estimate,
                    run_time, step_costs)
from .measure import mib, sync
from .models import build_benchmark_model, model_kwargs
from .options import (AMP_DTYPES, OPTIONS, benchmark_options,
                      format_options_report, option_variants)
from .peer import (benchmark_peer, build_peer, format_peer_report,
                   import_mmpretrain, run_peer_benchmark)
from .pipeline import (DEFAULT_CONFIG, measure_workers, reduced_decode_study,
                       run_pipeline_benchmark)
from .pipeline_timing import measure_single, timed_pipeline
from .step import (benchmark_dense_loss, benchmark_memory, benchmark_models,
                   build_models, format_memory_report, format_report,
                   grid_cells, peak_memory, precision_step, state_bytes,
                   train_step)
from .step_benchmark import run_step_benchmark
from .step_profile import format_profile, profile_models, run_step_profile

__all__ = [
    'AMP_DTYPES', 'DEFAULT_CONFIG', 'GPU_PEAK_TFLOPS', 'IMAGENET_TRAIN',
    'OPTIONS', 'Variant', 'benchmark_dense_loss', 'benchmark_memory',
    'benchmark_models', 'format_memory_report',
    'benchmark_options', 'benchmark_peer', 'build_benchmark_model',
    'build_models',
    'build_peer', 'count_flops', 'format_options_report',
    'format_peer_report', 'format_profile', 'format_report', 'grid_cells',
    'implied_efficiency', 'import_mmpretrain', 'load_baseline_transforms',
    'loss_costs', 'measure_single', 'mib', 'measure_workers', 'model_kwargs',
    'option_variants', 'peak_memory', 'precision_step', 'profile_models',
    'reduced_decode_study', 'run_flops_estimate', 'run_peer_benchmark',
    'run_pipeline_benchmark', 'run_step_benchmark', 'run_step_profile',
    'run_time', 'state_bytes', 'step_costs', 'sync', 'timed_pipeline',
    'train_step'
]
