# Copyright (c) densecl_plugin contributors. All rights reserved.
"""What ``tools/analysis/benchmark_step.py`` runs: :func:`run_step_benchmark`.

It picks one of the measurements and prints and saves its report: the steps
and the dense loss (:mod:`.step`), peak memory only (:mod:`.step`), or the
speed options compared (:mod:`.options`). The dependencies go one way:
:mod:`.options` builds on :mod:`.step`, and this module on both.
"""
from typing import Callable, Optional, Sequence

from .measure import measured_run
from .options import benchmark_options, format_options_report
from .step import (benchmark_dense_loss, benchmark_memory, benchmark_models,
                   format_memory_report, format_report, grid_cells)


def run_step_benchmark(depth: int = 50, batch: int = 8, size: int = 224,
                       queue_len: int = 65536, iters: int = 10,
                       warmup: int = 2, device: str = 'cpu',
                       amp: bool = False, threads: Optional[int] = None,
                       dense_rows: Optional[int] = None,
                       skip_steps: bool = False,
                       options: Optional[Sequence[str]] = None,
                       amp_dtype: str = 'bf16', peak: bool = True,
                       json_path: Optional[str] = None,
                       log: Callable = print,
                       memory_only: bool = False) -> dict:
    """What ``tools/analysis/benchmark_step.py`` does: run, print, save.

    Without ``options``: :func:`benchmark_models` (unless ``skip_steps``)
    and :func:`benchmark_dense_loss`, printed by :func:`format_report` with
    the images/s of both models. With ``options``:
    :func:`~.options.benchmark_options`, printed as a table.

    ``depth`` (50), ``batch`` (8), ``size`` (224), ``queue_len`` (65536),
    ``iters`` (10), ``warmup`` (2), ``device`` (``'cpu'``) and ``amp``
    (False; only without ``options``) are those of :func:`benchmark_models`.

    Args:
        threads (int, optional): torch CPU threads. Defaults to None
            (torch's choice).
        dense_rows (int, optional): Rows ``M`` of the dense-loss benchmark.
            Defaults to None (``batch * S^2`` of ``size``).
        skip_steps (bool): Only benchmark the dense loss. Defaults to False.
        options (Sequence[str], optional): Compare images/s with and without
            each of these (:data:`~.options.OPTIONS`) instead. Defaults to
            None.
        amp_dtype (str): Autocast dtype of the ``amp`` option (``'bf16'``
            or ``'fp16'``). Defaults to ``'bf16'``.
        peak (bool): Also measure peak step memory (of the steps, or of
            every variant with ``options``). Defaults to True.
        json_path (str, optional): Also write the results here. Defaults to
            None.
        log (Callable): Printer of the report. Defaults to ``print``.
        memory_only (bool): Only :func:`benchmark_memory` (``warmup``
            untimed steps, then one measured step per model). Defaults to
            False.

    Returns:
        dict: With ``options`` the :func:`~.options.benchmark_options`
        results, else ``{'steps': ..., 'dense_loss': ...}`` (``steps`` None
        with ``skip_steps``); each with ``load``, the machine's load
        average before and after (:class:`~.measure.LoadRecord`, which warns
        when it is above 0.5 per core).
    """
    return measured_run(
        lambda: _measure(depth, batch, size, queue_len, iters, warmup,
                         device, amp, dense_rows, skip_steps, options,
                         amp_dtype, peak, log, memory_only),
        None, threads, json_path, log)


def _measure(depth, batch, size, queue_len, iters, warmup, device, amp,
             dense_rows, skip_steps, options, amp_dtype, peak, log,
             memory_only) -> dict:
    """The measurement :func:`run_step_benchmark` picks, printed."""
    if memory_only:
        results = benchmark_memory(depth, batch, size, queue_len,
                                   max(warmup, 1), device, amp)
        log(format_memory_report(results))
        return results
    if options:
        results = benchmark_options(depth, batch, size, queue_len, iters,
                                    warmup, device, options, amp_dtype,
                                    peak=peak)
        log(format_options_report(results))
        return results
    steps = None
    if not skip_steps:
        steps = benchmark_models(depth, batch, size, queue_len, iters,
                                 warmup, device, amp, peak=peak)
    M = dense_rows or batch * grid_cells(size)
    dense = benchmark_dense_loss(M, queue_len, iters=max(iters, 3),
                                 device=device)
    log(format_report(steps, dense))
    if steps is not None:
        log('  images/s: ' + ', '.join(
            f"{n} {batch / steps[n]['median']:.2f}"
            for n in ('DenseCL', 'MoCoV2')))
    return dict(steps=steps, dense_loss=dense)
