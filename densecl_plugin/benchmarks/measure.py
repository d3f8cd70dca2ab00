# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The small measuring helpers every benchmark shares.

- :func:`sync`: wait for a device's queued work before a clock is read;
- :func:`mib`: a byte count as MiB text for the reports;
- :class:`LoadRecord`: the machine's load average before and after a
  timing, with a warning when it is above 0.5 per core (not a quiet
  machine), and :func:`format_load`, its report line.
"""
import os
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


#: load average per core above which a timing is not a quiet-machine figure
BUSY_LOAD_PER_CORE = 0.5


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


class LoadRecord:
    """Records the machine's load around a timing and warns when it is busy.

    Used as a context manager by every timing tool::

        with LoadRecord(log) as load:
            ...  # the timed work
        result['load'] = load.as_dict()

    The 1-minute load average is read on entry and on exit; where either is
    above :data:`BUSY_LOAD_PER_CORE` per core, ``log`` gets a warning that
    the figures are not quiet-machine figures (and on entry, so that a user
    can stop and wait). The figures themselves are never changed.

    Args:
        log (Callable): Printer of the warnings. Defaults to ``print``.
        limit (float): Load per core above which the machine counts as busy.
            Defaults to :data:`BUSY_LOAD_PER_CORE`.
    """

    def __init__(self, log: Callable[[str], None] = print,
                 limit: float = BUSY_LOAD_PER_CORE) -> None:
        self.log = log
        self.limit = limit
        self.before: Optional[dict] = None
        self.after: Optional[dict] = None

    def _busy(self, reading: dict) -> bool:
        load = reading['load']
        return load is not None and load[0] > self.limit * reading['cores']

    def _warn(self, reading: dict, when: str) -> None:
        busy = self.limit * reading['cores']
        self.log(f"WARNING: load average {reading['load'][0]:.2f} on "
                 f"{reading['cores']} cores {when} the timing (above "
                 f"{self.limit} per core): another job shares the CPU, so "
                 f'these are not quiet-machine figures; rerun when '
                 f'`uptime` shows less than {busy:.1f}')

    def __enter__(self) -> 'LoadRecord':
        self.before = machine_load()
        if self._busy(self.before):
            self._warn(self.before, 'before')
        return self

    def __exit__(self, *exc) -> None:
        self.after = machine_load()
        if exc[0] is None and self._busy(self.after):
            self._warn(self.after, 'after')

    @property
    def quiet(self) -> bool:
        """Neither reading was above the limit (unknown counts as quiet)."""
        return not any(r is not None and self._busy(r)
                       for r in (self.before, self.after))

    def as_dict(self) -> dict:
        """``before`` and ``after`` (:func:`machine_load`), ``quiet`` and
        the ``limit`` per core, for a result's ``load`` key."""
        return dict(before=self.before, after=self.after, quiet=self.quiet,
                    limit_per_core=self.limit)


def format_load(load: dict) -> str:
    """One report line from :meth:`LoadRecord.as_dict`."""
    def one(r):
        return 'n/a' if r is None or r['load'] is None else (
            '/'.join(f'{x:.2f}' for x in r['load']))
    cores = (load.get('before') or {}).get('cores', '?')
    verdict = 'quiet' if load['quiet'] else 'BUSY: not a quiet-machine figure'
    return (f"load average (1/5/15 min) before {one(load['before'])}, after "
            f"{one(load['after'])} on {cores} cores: {verdict}")
