# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The lab: what measures densecl_plugin, beside the plugin itself.

:mod:`densecl_plugin` is what a user's config imports (registry, datasets,
models, engine, apis, converters, downstream, evaluation). This package holds
what the project runs to measure and show it: the demo
(:mod:`densecl_lab.demo`), the small-scale study (:mod:`densecl_lab.study`),
the speed benchmarks (:mod:`densecl_lab.benchmarks`), the analysis of runs
(:mod:`densecl_lab.analysis`) and the preparation of the real data sets they
use (:mod:`densecl_lab.data_prep`). The lab imports the plugin; the plugin
never imports the lab (an import-linter contract in ``make lint``).
"""
