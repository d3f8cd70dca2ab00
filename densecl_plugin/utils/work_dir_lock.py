# Copyright (c) densecl_plugin contributors. All rights reserved.
"""One training run per work dir: a lock file with the pid and host.

Two runs writing one work dir overwrite each other's checkpoints and
``last_checkpoint``; :class:`WorkDirLock` refuses the second one.
"""
import json
import os
import os.path as osp
import socket
import time
from typing import Optional

from mmengine.logging import print_log

from .dist_launch import job_id, restart_count

LOCK_NAME = 'train.lock'


class WorkDirLockedError(RuntimeError):
    """A live run holds the work dir."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


class WorkDirLock:
    """``with WorkDirLock(work_dir):`` holds ``work_dir/train.lock``.

    The lock file holds ``{"pid", "hostname", "started"}``, created with
    ``O_EXCL`` (atomic). A lock of a live pid on this host refuses the run
    (:class:`WorkDirLockedError`, naming the file, pid and host); a lock of
    a dead pid on this host is stale: reported and taken over. A lock of
    another host cannot be checked from here and refuses the run too, with
    the way out (delete the file if that run is gone). The lock is removed
    on exit, if it is still ours.

    A restarted job (torchrun ``--max-restarts``, a requeued Slurm job) is
    not refused by the lock its previous attempt left: the lock also holds
    the job's id and restart count (``job``, ``restart``), and a lock of
    the same job with a lower restart count is taken over, even from
    another host (a requeued job may land on another node) or a pid that
    lives on.

    Args:
        work_dir (str): the run's work dir (created if missing).
        job (str, optional): the job's id across its restarts. Defaults to
            :func:`~densecl_plugin.utils.dist_launch.job_id`.
        restart (int, optional): this attempt's restart count. Defaults to
            :func:`~densecl_plugin.utils.dist_launch.restart_count`.
    """

    def __init__(self, work_dir: str, job: Optional[str] = None,
                 restart: Optional[int] = None) -> None:
        self.work_dir = work_dir
        self.path = osp.join(work_dir, LOCK_NAME)
        self.owned = False
        self.job = job_id() if job is None else job
        self.restart = restart_count() if restart is None else restart

    def _read(self) -> Optional[dict]:
        try:
            with open(self.path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def acquire(self) -> None:
        os.makedirs(self.work_dir, exist_ok=True)
        host = socket.gethostname()
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                info = self._read()
                if info is None:  # being written, or garbage
                    time.sleep(0.2)
                    info = self._read()
                pid = (info or {}).get('pid')
                lhost = (info or {}).get('hostname')
                if self._earlier_attempt(info):
                    print_log(
                        f'{self.path}: lock of attempt {info["restart"]} of '
                        f'this job ({self.job}; pid {pid} on {lhost}); this '
                        f'is restart {self.restart} -- taking it over.',
                        logger='current', level=30)
                elif info is not None and lhost != host:
                    raise WorkDirLockedError(
                        f'{self.path}: the work dir is locked by pid {pid} on '
                        f'host {lhost!r}, which cannot be checked from '
                        f'{host!r}. Use another --work-dir, or delete '
                        f'{self.path} if that run has ended.')
                elif isinstance(pid, int) and _pid_alive(pid) and \
                        pid != os.getpid():
                    raise WorkDirLockedError(
                        f'{self.path}: a training run (pid {pid} on {host}, '
                        f'started {info.get("started")}) is writing this '
                        f'work dir. Use another --work-dir, or stop that '
                        f'run first.')
                else:
                    print_log(
                        f'{self.path}: stale lock of pid {pid} on {lhost} '
                        f'(no such process) -- taking it over.',
                        logger='current', level=30)
                try:
                    os.remove(self.path)
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, 'w') as f:
                json.dump(dict(pid=os.getpid(), hostname=host,
                               started=time.strftime('%Y-%m-%d %H:%M:%S'),
                               job=self.job, restart=self.restart), f)
            self.owned = True
            return
        raise WorkDirLockedError(f'{self.path}: could not take the lock')

    def _earlier_attempt(self, info: Optional[dict]) -> bool:
        """Whether ``info`` is the lock of an earlier attempt of our job."""
        if not info or self.job is None or info.get('job') != self.job:
            return False
        restart = info.get('restart')
        return isinstance(restart, int) and restart < self.restart

    def release(self) -> None:
        if self.owned:
            info = self._read()
            if info and info.get('pid') == os.getpid():
                os.remove(self.path)
            self.owned = False

    def __enter__(self) -> 'WorkDirLock':
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
