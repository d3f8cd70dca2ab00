# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Run one MMEngine config for the demo: quietly, with a progress bar.

:func:`run_config` trains a config with :func:`densecl_plugin.apis.train`
(MMEngine's Runner), while everything the runner, mmdet and mmseg print goes
to a log file (:func:`quiet_logs`) and only :class:`DemoProgressHook`'s bars
reach the terminal.
"""
import contextlib
import copy
import logging
import os
import os.path as osp
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional

from mmengine.config import Config

from .demo_progress_hook import DemoProgressHook


@dataclass
class RunRecord:
    """What one training run gave.

    Attributes:
        name (str): the run's name (bar label, experiment name prefix).
        work_dir (str): its work dir.
        losses (list[dict]): per-iteration losses.
        metrics (dict): the last validation's metrics (empty without one).
        train_time (float): seconds of training iterations.
        val_time (float): seconds of validation.
        wall_time (float): seconds for the whole run (building included).
    """
    name: str
    work_dir: str
    losses: List[Dict[str, float]] = field(default_factory=list)
    metrics: Dict[str, Any] = field(default_factory=dict)
    train_time: float = 0.0
    val_time: float = 0.0
    wall_time: float = 0.0


def _detach_stream_handlers(stream) -> None:
    """Remove every MMLogger handler that writes to ``stream`` (before the
    stream is closed, so that later log calls do not fail on it)."""
    from mmengine.logging import MMLogger
    loggers = list(MMLogger._instance_dict.values()) + [
        logging.getLogger(), logging.getLogger('mmengine')]
    for logger in loggers:
        for handler in list(logger.handlers):
            if getattr(handler, 'stream', None) is stream:
                logger.removeHandler(handler)


@contextlib.contextmanager
def quiet_logs(log_file: str) -> Iterator[Any]:
    """Send ``stdout``, ``stderr`` and Python warnings to ``log_file``
    (appended) inside the block.

    MMEngine's loggers bind the ``sys.stdout`` of the moment they are
    created, so a runner built inside the block logs to the file; its
    handlers on the file are removed when the block ends. Progress bars of
    :class:`DemoProgressHook` write to ``sys.__stderr__`` and stay visible.

    Args:
        log_file (str): the log file.

    Yields:
        file: the open log file.
    """
    os.makedirs(osp.dirname(osp.abspath(log_file)), exist_ok=True)
    with open(log_file, 'a', buffering=1) as f:

        def show(message, category, filename, lineno, file=None, line=None):
            f.write(warnings.formatwarning(message, category, filename,
                                           lineno, line))

        try:
            with contextlib.redirect_stdout(f), \
                    contextlib.redirect_stderr(f), warnings.catch_warnings():
                warnings.showwarning = show
                yield f
        finally:
            _detach_stream_handlers(f)


def run_config(cfg: Config, work_dir: str, name: str, log_file: str,
               init_checkpoint: Optional[str] = None,
               final_checkpoint: Optional[str] = None,
               show_progress: bool = True) -> RunRecord:
    """Train ``cfg`` in ``work_dir`` and return what the demo reports.

    Args:
        cfg (Config): a full config (it is copied, not changed).
        work_dir (str): the run's work dir.
        name (str): label of the progress bar and experiment-name prefix
            (unique per run, so that loggers and visualizers of several runs
            in one process stay apart).
        log_file (str): where the run's console output goes.
        init_checkpoint (str, optional): save the weights before training
            here (see :class:`DemoProgressHook`). Defaults to None.
        final_checkpoint (str, optional): save the weights after training
            here. Defaults to None.
        show_progress (bool): draw progress bars. Defaults to True.

    Returns:
        RunRecord: losses, metrics and times.
    """
    from densecl_plugin.apis import train
    cfg = copy.deepcopy(cfg)  # a copy to change
    cfg.work_dir = work_dir
    cfg.launcher = 'none'
    stamp = time.strftime('%Y%m%d_%H%M%S')
    cfg.experiment_name = f'{name.replace(" ", "_")}_{stamp}_{os.getpid()}'
    if cfg.get('visualizer') is not None:
        cfg.visualizer.name = cfg.experiment_name
    record_file = osp.join(work_dir, 'demo_record.json')
    cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + [
        dict(type='densecl_plugin.DemoProgressHook', desc=name,
             record_file=record_file, init_checkpoint=init_checkpoint,
             final_checkpoint=final_checkpoint, enable_bar=show_progress)
    ]
    t0 = time.perf_counter()
    with quiet_logs(log_file):
        runner = train(cfg)
    wall = time.perf_counter() - t0
    hook = next(h for h in runner.hooks if isinstance(h, DemoProgressHook))
    return RunRecord(name=name, work_dir=work_dir, losses=hook.losses,
                     metrics=hook.metrics, train_time=hook.train_time,
                     val_time=hook.val_time, wall_time=wall)
