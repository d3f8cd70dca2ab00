# Copyright (c) densecl_plugin contributors. All rights reserved.
"""A seeded small-scale study of what DenseCL learns, against MoCo v2 and
random init, over pre-training budgets.

:func:`run_study` runs it (``tools/benchmarks/small_scale_study.py`` is its
command line), reusing the demo's stages (:mod:`densecl_lab.demo`).
Importing this package registers :class:`StudyCurveHook`.
"""
from .curve_hook import StudyCurveHook
from .stats import mean_std, paired_difference, t_quantile
from .study import (CALIBRATION, FULL, QUICK, Study, StudySettings, estimate,
                    measured_costs, run_study)

__all__ = ['CALIBRATION', 'FULL', 'QUICK', 'Study', 'StudyCurveHook',
           'StudySettings', 'estimate', 'mean_std', 'measured_costs',
           'paired_difference', 'run_study', 't_quantile']
