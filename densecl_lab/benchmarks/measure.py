# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The small measuring helpers every benchmark shares.

- :func:`sync`: wait for a device's queued work before a clock is read;
- :func:`mib`: a byte count as MiB text for the reports;
- :class:`LoadRecord`: the machine's load average before a timing and the
  CPU other processes used during it, with a warning when either says the
  machine was not quiet, and :func:`format_load`, its report line;
- :func:`measured_run`: threads, a :class:`LoadRecord` around a
  measurement, its report and JSON file (what every benchmark CLI does).
"""
import os
import time
from typing import Callable, Optional

import torch


def sync(device: torch.device) -> None:
    """Wait until every kernel queued on ``device`` has finished.

    A no-op on CPU, whose ops run synchronously.

    Args:
        device (torch.device): The device whose clock-relevant work must be
            done.
    """
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def mib(n: Optional[int]) -> str:
    """``n`` bytes as ``'12.3 MiB'``, or ``'n/a'`` for None.

    Args:
        n (int, optional): A byte count, None where it was not measured.

    Returns:
        str: The text for a report.
    """
    return 'n/a' if n is None else f'{n / 2**20:.1f} MiB'


#: load average per core before a timing above which it is not a
#: quiet-machine figure
BUSY_LOAD_PER_CORE = 0.5
#: CPU (cores' worth, per core) that other processes may use during a timing
BUSY_OTHERS_PER_CORE = 0.1


def machine_load() -> dict:
    """The 1, 5 and 15 minute load averages and the number of cores.

    Returns:
        dict: ``load`` (three floats, ``os.getloadavg()``; None where the
        platform has none) and ``cores`` (``os.cpu_count()``).
    """
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):  # not on this platform
        load = None
    return dict(load=load, cores=os.cpu_count() or 1)


def machine_busy_seconds() -> Optional[float]:
    """CPU seconds all processes have spent busy since boot (Linux
    ``/proc/stat``: user, nice, system, irq, softirq, steal), or None."""
    try:
        with open('/proc/stat') as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != 'cpu':
        return None
    ticks = [int(x) for x in fields[1:9]]
    busy = sum(ticks[i] for i in (0, 1, 2, 5, 6, 7))
    return busy / os.sysconf('SC_CLK_TCK')


def own_cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (loader
    workers are joined when their iterator ends)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _cpu_mark() -> tuple:
    """Wall clock, the machine's busy CPU seconds and this process's."""
    return time.perf_counter(), machine_busy_seconds(), own_cpu_seconds()


def _others_cores_since(mark: tuple) -> Optional[float]:
    """Cores' worth of CPU that other processes used since ``mark``
    (:func:`_cpu_mark`), or None where ``/proc/stat`` cannot tell."""
    wall0, busy0, own0 = mark
    wall, busy = time.perf_counter() - wall0, machine_busy_seconds()
    if busy is None or busy0 is None or wall <= 0:
        return None
    others = (busy - busy0) - (own_cpu_seconds() - own0)
    return round(max(others, 0.0) / wall, 3)


class LoadRecord:
    """Records the machine's load around a timing and warns when it is busy.

    Used as a context manager by every timing tool::

        with LoadRecord(log) as load:
            ...  # the timed work
        result['load'] = load.as_dict()

    Two readings judge a timing (the figures themselves are never changed):

    - *before*: the 1-minute load average on entry; above
      :data:`BUSY_LOAD_PER_CORE` per core, the machine is busy already
      (warned at once, so that a user can stop and wait), unless a
      1-second sample (``others_cores_now``) shows that other processes
      use less than :data:`BUSY_OTHERS_PER_CORE` per core now (the average
      still holds a job that has just ended);
    - *during*: the CPU that other processes used while it ran, in cores
      (all busy CPU time from ``/proc/stat`` less this process's and its
      children's, over the wall time); above :data:`BUSY_OTHERS_PER_CORE`
      per core, another job shared the machine. The load average after a
      timing counts the timing's own threads, so it is recorded, not judged.

    Args:
        log (Callable): Printer of the warnings. Defaults to ``print``.
        limit (float): Load per core before the timing above which the
            machine counts as busy. Defaults to :data:`BUSY_LOAD_PER_CORE`.
        others_limit (float): Other processes' CPU per core during the
            timing above which it counts as shared. Defaults to
            :data:`BUSY_OTHERS_PER_CORE`.
    """

    def __init__(self, log: Callable[[str], None] = print,
                 limit: float = BUSY_LOAD_PER_CORE,
                 others_limit: float = BUSY_OTHERS_PER_CORE) -> None:
        self.log = log
        self.limit = limit
        self.others_limit = others_limit
        self.before: Optional[dict] = None
        self.after: Optional[dict] = None
        self.others_cores: Optional[float] = None
        self.sample_seconds = 1.0
        self._start = None

    def _average_high(self) -> bool:
        load = self.before['load']
        return load is not None and \
            load[0] > self.limit * self.before['cores']

    def _busy_before(self) -> bool:
        if not self._average_high():
            return False
        # the 1-minute average decays slowly after a job ends: busy only if
        # other processes use the CPU now (None: cannot tell, trust it)
        now = self.before.get('others_cores_now')
        return now is None or now > self.others_limit * self.before['cores']

    def _sample_others(self, seconds: float) -> Optional[float]:
        """Cores' worth of CPU other processes use over ``seconds``."""
        mark = _cpu_mark()
        time.sleep(seconds)
        return _others_cores_since(mark)

    def _shared(self) -> bool:
        return (self.others_cores is not None and self.others_cores
                > self.others_limit * self.before['cores'])

    def __enter__(self) -> 'LoadRecord':
        self.before = machine_load()
        if self._average_high():
            self.before['others_cores_now'] = self._sample_others(
                self.sample_seconds)
        if self._busy_before():
            cores = self.before['cores']
            self.log(f"WARNING: load average {self.before['load'][0]:.2f} "
                     f'on {cores} cores before the timing (above '
                     f'{self.limit} per core): another job uses the CPU, so '
                     f'these will not be quiet-machine figures; rerun when '
                     f'`uptime` shows less than {self.limit * cores:.1f}')
        self._start = _cpu_mark()
        return self

    def __exit__(self, *exc) -> None:
        self.others_cores = _others_cores_since(self._start)
        self.after = machine_load()
        if exc[0] is None and self._shared():
            self.log(f'WARNING: other processes used {self.others_cores:.2f}'
                     f" of {self.before['cores']} cores during the timing "
                     f'(above {self.others_limit} per core): these are not '
                     f'quiet-machine figures')

    @property
    def quiet(self) -> bool:
        """Neither reading was above its limit (unknown counts as quiet)."""
        return not (self._busy_before() or self._shared())

    def as_dict(self) -> dict:
        """``before`` and ``after`` (:func:`machine_load`),
        ``others_cores``, ``quiet`` and the limits, for a result's ``load``
        key."""
        return dict(before=self.before, after=self.after,
                    others_cores=self.others_cores, quiet=self.quiet,
                    limit_per_core=self.limit,
                    others_limit_per_core=self.others_limit)


def format_load(load: dict) -> str:
    """One report line from :meth:`LoadRecord.as_dict`."""
    def one(r):
        return 'n/a' if r is None or r['load'] is None else (
            '/'.join(f'{x:.2f}' for x in r['load']))
    cores = (load.get('before') or {}).get('cores', '?')
    others = load.get('others_cores')
    verdict = 'quiet' if load['quiet'] else 'BUSY: not a quiet-machine figure'
    return (f"load average (1/5/15 min) before {one(load['before'])}, after "
            f"{one(load['after'])} on {cores} cores; other processes used "
            f"{'n/a' if others is None else f'{others:.2f}'} cores during "
            f'the timing: {verdict}')


def measured_run(measure: Callable[[], dict],
                 report: Optional[Callable[[dict], str]] = None,
                 threads: Optional[int] = None,
                 json_path: Optional[str] = None,
                 log: Callable = print) -> dict:
    """What every benchmark CLI does around its measurement.

    Sets torch's CPU threads, runs ``measure()`` inside a
    :class:`LoadRecord`, stores its record as the result's ``load``, logs
    ``report(result)`` (when given) and the :func:`format_load` line, and
    writes the result as JSON to ``json_path`` (values JSON cannot hold are
    written as text).

    Args:
        measure (Callable[[], dict]): The measurement; returns its result.
        report (Callable[[dict], str], optional): Formats the result for the
            log. Defaults to None (the measurement logged its own report).
        threads (int, optional): ``torch.set_num_threads`` first. Defaults
            to None (unchanged).
        json_path (str, optional): Also write the result here. Defaults to
            None.
        log (Callable): Printer. Defaults to ``print``.

    Returns:
        dict: The result, with ``load``.
    """
    import json
    if threads:
        torch.set_num_threads(threads)
    with LoadRecord(log) as load:
        result = measure()
    result['load'] = load.as_dict()
    if report is not None:
        log(report(result))
    log(format_load(result['load']))
    if json_path:
        with open(json_path, 'w') as f:
            json.dump(result, f, indent=2, default=str)
    return result
