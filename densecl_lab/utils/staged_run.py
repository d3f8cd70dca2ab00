# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Runs made of stages, each reused when its inputs did not change.

A stage writes its result (a JSON dict) with a :func:`fingerprint` of its
inputs; :meth:`StagedRun._stage` reuses a result that reads and holds the
expected fingerprint (:func:`finished`) and otherwise runs the stage and
writes its result atomically. The demo (:mod:`densecl_lab.demo.stages`)
and the study (:mod:`densecl_lab.study`) are such runs.
"""
import hashlib
import json
import os
import os.path as osp
import sys
import time
from typing import Any, Callable, Dict, List, Optional, TextIO

from mmengine.config import Config

import densecl_plugin

#: part of every fingerprint: bump it when what a stage stores changes, so
#: that results written by an older demo are recomputed, not misread
RESULT_VERSION = 3


def load_json(path: str) -> Dict[str, Any]:
    """Read a JSON file with a clear error."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as err:
        raise ValueError(f'cannot read stage result {path!r}: {err}') from err


def try_load_json(path: str) -> Optional[Dict[str, Any]]:
    """The JSON in ``path``, or None when it is missing or does not read
    (for files a run may not have written yet)."""
    try:
        return load_json(path)
    except ValueError:
        return None


def default_configs_dir() -> str:
    """``configs/`` of the source tree, else the one ``mim`` installs."""
    # realpath: site-packages may hold a symlink to the source tree
    lab = osp.dirname(osp.dirname(osp.realpath(__file__)))  # densecl_lab/
    plugin = osp.dirname(osp.realpath(densecl_plugin.__file__))
    for candidate in (osp.join(osp.dirname(lab), 'configs'),
                      osp.join(plugin, '.mim', 'configs')):
        if osp.isdir(osp.join(candidate, 'demo')):
            return candidate
    raise FileNotFoundError(f'no configs/demo next to {lab} (source tree) '
                            'nor in densecl_plugin/.mim/configs (mim install)')


def fingerprint(**parts: Any) -> str:
    """A digest of a stage's inputs (JSON-able values; configs as dicts)
    and of :data:`RESULT_VERSION`."""
    def plain(value: Any) -> Any:
        return value.to_dict() if isinstance(value, Config) else value
    parts = dict(parts, result_version=RESULT_VERSION)
    text = json.dumps({k: plain(v) for k, v in parts.items()},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def finished(result_file: str, expected: str, force: bool = False
             ) -> Optional[Dict[str, Any]]:
    """The stored result of a stage if it can be reused, else None.

    A result is reused when it exists, reads, and has the ``fingerprint``
    ``expected``, unless ``force``.
    """
    if force or not osp.isfile(result_file):
        return None
    try:
        result = load_json(result_file)
    except ValueError:
        return None
    return result if result.get('fingerprint') == expected else None


class StagedRun:
    """Stages that share paths, settings and the console, each reused when
    its result file holds the expected fingerprint (the demo, the study).

    Args:
        work_dir (str): results go here.
        data_dir (str): the data sets go here (shared by full and quick).
        cache_dir (str, optional): downloaded wheels.
        settings: the run's settings (:class:`DemoSettings`, ...).
        force (bool): redo every stage. Defaults to False.
        configs_dir (str, optional): the ``configs/`` folder. Defaults to
            :func:`default_configs_dir`.
        console (TextIO, optional): where stage lines go. Defaults to
            ``sys.stdout``.
        show_progress (bool): draw progress bars. Defaults to True.
        parent (StagedRun, optional): a run these stages are part of (the
            study runs the demo's stages): they share its data manifest, its
            log file and its record of stages (:attr:`stage_status`).
            Defaults to None (a run of its own).
    """

    #: the log file's name in ``work_dir``
    LOG_NAME = 'run.log'
    #: say on the console when a finished stage is reused
    ANNOUNCE_REUSE = True

    def __init__(self, work_dir: str, data_dir: str,
                 cache_dir: Optional[str], settings: Any,
                 force: bool = False, configs_dir: Optional[str] = None,
                 console: Optional[TextIO] = None,
                 show_progress: bool = True,
                 parent: Optional['StagedRun'] = None) -> None:
        self.work_dir = work_dir
        self.data_dir = data_dir
        self.cache_dir = cache_dir
        self.settings = settings
        self.force = force
        self.configs_dir = configs_dir or default_configs_dir()
        self.console = console or sys.stdout
        self.show_progress = show_progress
        self.log_file = osp.join(work_dir, self.LOG_NAME)
        self.manifest: Dict[str, Any] = {}
        self.stage_status: List[Dict[str, Any]] = []
        if parent is not None:
            self.log_file = parent.log_file
            self.manifest = parent.manifest
            self.stage_status = parent.stage_status  # one record of all

    def say(self, text: str) -> None:
        """A line on the console."""
        print(text, file=self.console, flush=True)

    def _stage(self, name: str, result_file: str, expected: str,
               run: Callable[[], Dict[str, Any]]) -> Dict[str, Any]:
        """Reuse a finished stage or run it (its result written
        atomically, so a crash never leaves half a file); record what
        happened in :attr:`stage_status`."""
        done = finished(result_file, expected, self.force)
        if done is not None:
            if self.ANNOUNCE_REUSE:
                self.say(f'  {name}: done before, reusing {result_file}')
            self.stage_status.append(dict(
                stage=name, skipped=True, result=result_file,
                wall_time=done.get('stage_wall_time', 0.0)))  # when it ran
            return done
        t0 = time.perf_counter()
        result = run()
        result.update(fingerprint=expected,
                      stage_wall_time=time.perf_counter() - t0)
        os.makedirs(osp.dirname(result_file), exist_ok=True)
        tmp = result_file + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(result, f, indent=1)
        os.replace(tmp, result_file)
        self.stage_status.append(dict(stage=name, skipped=False,
                                      result=result_file,
                                      wall_time=result['stage_wall_time']))
        return result
