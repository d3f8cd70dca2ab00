# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Log and save the values a run resolved from ``'auto'``."""
from typing import List, Optional

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log

from densecl_plugin.registry import HOOKS
from densecl_plugin.utils.auto_values import format_table, save_rows


@HOOKS.register_module()
class ResolvedValuesHook(Hook):
    """Log the table of resolved values when the run starts and write it to
    ``<work_dir>/resolved_values.json`` (main process only).

    :func:`~densecl_plugin.utils.auto_values.resolve_auto_values` adds this
    hook with its table; it is not meant to be written into a config.

    Args:
        rows (list[dict]): the table (``key``, ``value``, ``source``,
            ``rule``).
    """

    priority = 'VERY_HIGH'

    def __init__(self, rows: List[dict]) -> None:
        self.rows = [dict(r) for r in rows]
        self.path: Optional[str] = None

    def before_run(self, runner) -> None:
        """Log the table; save it in the work dir."""
        print_log(format_table(self.rows), logger='current')
        if is_main_process():
            self.path = save_rows(self.rows, runner.work_dir)
