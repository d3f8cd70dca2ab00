# Copyright (c) densecl_plugin contributors. All rights reserved.
"""``make demo``: the DenseCL story on real data, on a CPU.

:func:`run_demo` runs the stages of :mod:`.stages`; ``tools/demo.py`` is
its command line. Importing this package registers
:class:`DemoProgressHook` (our ``HOOKS``).
"""
from .demo_progress_hook import DemoProgressHook
from .stages import FULL, QUICK, Demo, DemoSettings, StageSettings, run_demo

__all__ = ['DemoProgressHook', 'Demo', 'DemoSettings', 'FULL', 'QUICK',
           'StageSettings', 'run_demo']
