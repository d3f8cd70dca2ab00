# Copyright (c) densecl_plugin contributors. All rights reserved.
"""A staged run in parallel shards: split its units, run each share in its
own process, follow them, and stop them all together.

:func:`assign_shards` splits a plan's ``(seed, budget)`` units over the
shards by estimated cost, the same split in every process;
:func:`run_parallel` spawns one process a shard (:func:`run_shard`, which
exits when its parent dies: :func:`exit_when_orphaned`) and prints their
progress until they all finished. The run itself is passed in (a class whose
``run(shard=(i, n))`` runs shard ``i``'s units), so this module knows
nothing of the study (:func:`~.study.run_study` passes
:class:`~.study.Study` and writes the report afterwards).
"""
import os
import os.path as osp
import signal
import sys
import threading
import time
import traceback
from typing import Any, Callable, Dict, Optional, Sequence, Tuple


def assign_shards(units: Sequence[Tuple[int, int]],
                  costs: Sequence[float], n: int) -> Dict[Tuple[int, int],
                                                          int]:
    """Split the units over ``n`` parallel shards, balancing their
    estimated cost (longest first, each to the least-loaded shard; ties to
    the lower shard), so every shard process computes the same split.

    Args:
        units (Sequence[tuple[int, int]]): ``(seed, budget)`` pairs.
        costs (Sequence[float]): their estimated seconds.
        n (int): shards (>= 1).

    Returns:
        dict: unit -> shard index in ``[0, n)``.
    """
    if n < 1:
        raise ValueError(f'the number of shards must be >= 1, got {n}')
    if len(units) != len(costs):
        raise ValueError(f'{len(units)} units but {len(costs)} costs')
    load = [0.0] * n
    owner: Dict[Tuple[int, int], int] = {}
    order = sorted(range(len(units)), key=lambda i: (-costs[i], i))
    for i in order:
        k = min(range(n), key=lambda j: (load[j], j))
        owner[tuple(units[i])] = k
        load[k] += costs[i]
    return owner


def exit_when_orphaned(parent: int, poll_s: float = 2.0) -> threading.Thread:
    """Start a daemon thread that ends this process (exit code 3) once its
    parent ``parent`` is gone (killed so hard that not even SIGTERM reached
    it): the finished stages stay and a rerun resumes.

    Args:
        parent (int): the parent's pid (``os.getppid()`` at the start).
        poll_s (float): seconds between two looks. Defaults to 2.

    Returns:
        threading.Thread: the started watcher.
    """
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(3)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher


def run_shard(run_cls: Callable[..., Any], kwargs: Dict[str, Any],
              shard: Tuple[int, int], log_path: str, threads: int) -> None:
    """One shard process of :func:`run_parallel`: its console goes to
    ``log_path``; it runs the units of shard ``shard = (i, n)``.

    Args:
        run_cls (callable): builds the run from ``kwargs`` plus
            ``console`` and ``show_progress`` (e.g.
            :class:`~densecl_lab.study.study.Study`); its ``run(shard=...)``
            runs the shard's units.
        kwargs (dict): the keyword arguments of ``run_cls``.
        shard (tuple[int, int]): ``(i, n)``, 0-based.
        log_path (str): the shard's log.
        threads (int): torch threads.
    """
    import torch
    torch.set_num_threads(threads)
    exit_when_orphaned(os.getppid())
    with open(log_path, 'a', buffering=1) as console:
        sys.stdout = sys.stderr = console
        try:
            print(f'shard {shard[0] + 1}/{shard[1]}: pid {os.getpid()}',
                  file=console)
            run = run_cls(console=console, show_progress=False, **kwargs)
            run.run(shard=shard)
        except BaseException:
            # written while the log is open: the process's own stderr is
            # the log, which closes with this block
            traceback.print_exc(file=console)
            raise
        finally:
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__


def run_parallel(run_cls: Callable[..., Any], kwargs: Dict[str, Any],
                 jobs: int, work_dir: str, poll_s: float = 30.0) -> int:
    """Run a plan's units in ``jobs`` parallel processes (spawned, one
    torch thread each unless the cores allow more) and wait for them.

    Each shard's stage and ETA lines go to ``<work_dir>/shard<i>of<n>.log``;
    this process prints each shard's latest line every ``poll_s`` seconds.
    A failing shard stops nothing else; the error names its log, and a
    rerun resumes every shard where it stopped. Ctrl-C or SIGTERM here
    terminates every shard.

    Args:
        run_cls (callable): the run each shard builds (see
            :func:`run_shard`); picklable (a module-level class).
        kwargs (dict): its keyword arguments (picklable).
        jobs (int): shards.
        work_dir (str): where the shard logs go.
        poll_s (float): seconds between two progress prints. Defaults to
            30.

    Returns:
        int: the torch threads each shard used.
    """
    import multiprocessing as mp
    os.makedirs(work_dir, exist_ok=True)
    console = sys.stdout
    threads = max(1, (os.cpu_count() or 1) // jobs)
    ctx = mp.get_context('spawn')
    procs, logs = [], []
    for i in range(jobs):
        log_path = osp.join(work_dir, f'shard{i + 1}of{jobs}.log')
        logs.append(log_path)
        proc = ctx.Process(target=run_shard, name=f'shard{i + 1}',
                           args=(run_cls, dict(kwargs), (i, jobs), log_path,
                                 threads))
        proc.start()
        procs.append(proc)
    print(f'{jobs} shards in parallel ({threads} torch thread(s) each); '
          f'their logs: {", ".join(logs)}', file=console, flush=True)

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        while any(p.is_alive() for p in procs):
            for p in procs:
                p.join(timeout=poll_s / len(procs))
            for i, log_path in enumerate(logs):
                last = _last_line(log_path, '  study ')
                if last:
                    print(f'  shard {i + 1}/{jobs}:{last[7:]}',
                          file=console, flush=True)
    except BaseException:  # Ctrl-C, SIGTERM: no shard outlives us
        for p in procs:
            p.terminate()
        for p in procs:
            p.join(timeout=10)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    failed = [(i, p.exitcode) for i, p in enumerate(procs) if p.exitcode]
    if failed:
        raise RuntimeError('shard(s) failed: ' + '; '.join(
            f'shard {i + 1}/{jobs} exit code {code}, see {logs[i]}'
            for i, code in failed) + '; rerun to resume')
    return threads


def _last_line(path: str, prefix: str) -> Optional[str]:
    """The last line of ``path`` that starts with ``prefix``."""
    if not osp.exists(path):
        return None
    with open(path, errors='replace') as f:
        lines = [ln.rstrip('\n') for ln in f if ln.startswith(prefix)]
    return lines[-1] if lines else None
