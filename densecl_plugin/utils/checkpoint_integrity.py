# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Checkpoints that survive a crash, and a resume that finds an intact one.

MMEngine 0.10.7 writes a checkpoint in place (``torch.save`` into a buffer,
then ``open(final_name, 'wb').write``), so a process killed mid-save, a full
disk or a copy cut short leaves a truncated file under a real name, and
``--resume`` then stops in torch's ``PytorchStreamReader failed reading zip
archive``. Here:

* :func:`atomic_save` runs a save into a temporary file in the same folder,
  ``fsync`` s it and ``os.replace`` s it onto the final name (the folder is
  fsync'ed too), so the final name only ever holds a whole file;
* :func:`is_intact` checks a checkpoint without unpickling it (``torch.save``
  writes a zip archive with a CRC-32 per member: the central directory must
  be there and every member's CRC must match);
* :func:`resolve_resume` picks the checkpoint ``--resume`` (auto) loads: the
  one ``last_checkpoint`` names if it is intact, else the newest intact one
  in the work dir, with a warning naming both files.
"""
import os
import os.path as osp
import re
import zipfile
from typing import Callable, List, Optional

from mmengine.logging import print_log

#: how a temporary checkpoint is named next to its final name
TMP_PREFIX = '.tmp-'


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. a platform without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_save(save: Callable[[str], None], path: str) -> None:
    """Run ``save(tmp_path)``, then move the file onto ``path`` atomically.

    Args:
        save (Callable[[str], None]): writes a file at the path it is given.
        path (str): the final file name.

    If ``save`` raises or the process dies, ``path`` keeps what it held
    before (or stays absent) and only a ``.tmp-*`` file is left, which
    :func:`resolve_resume` never picks. If ``save`` writes nothing (a
    non-main rank), nothing is moved.
    """
    folder, name = osp.split(path)
    tmp = osp.join(folder, f'{TMP_PREFIX}{os.getpid()}-{name}')
    try:
        save(tmp)
        if not osp.exists(tmp):
            return
        with open(tmp, 'rb') as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(folder or '.')
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


_TMP = re.compile(re.escape(TMP_PREFIX) + r'(\d+)-.+\.pth$')


def remove_stale_tmp(folder: str, logger: str = 'current') -> List[str]:
    """Delete the ``.tmp-<pid>-*.pth`` files that a killed save left.

    A save killed mid-write leaves its whole-size temporary file behind
    (:func:`atomic_save` removes it only if the process lives on). Here a
    temporary file is removed only if its pid is not alive on this host,
    so a live run's save in progress is never touched.

    Args:
        folder (str): where the checkpoints are written.
        logger (str): where to log what is removed. Defaults to
            ``'current'``.

    Returns:
        list[str]: the files removed.
    """
    if not osp.isdir(folder):
        return []
    removed = []
    for f in sorted(os.listdir(folder)):
        m = _TMP.match(f)
        if m is None or _pid_alive(int(m.group(1))):
            continue
        path = osp.join(folder, f)
        try:
            os.remove(path)
        except OSError:
            continue
        removed.append(path)
    if removed:
        print_log(f'removed {len(removed)} temporary checkpoint(s) of a '
                  f'save that was cut short: {removed}', logger=logger,
                  level=30)
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # alive (another user's)
        return True
    return True


def is_intact(path: str) -> Optional[str]:
    """Why the checkpoint ``path`` cannot be loaded, or None if it is whole.

    Reads the file once (CRC of every member), never unpickles it.

    Returns:
        str | None: the reason (missing, empty, not a zip archive, a member
        failing its CRC), or None.
    """
    if not osp.isfile(path):
        return 'the file does not exist'
    if osp.getsize(path) == 0:
        return 'the file is empty (0 bytes)'
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        return (f'not a whole torch checkpoint ({type(e).__name__}: {e}); '
                f'it is {osp.getsize(path)} bytes, as a save cut short '
                f'leaves it')
    if bad is not None:
        return f'member {bad!r} fails its CRC check (the file is damaged)'
    return None


_STEP = re.compile(r'(\d+)\.pth$')


def checkpoints_in(work_dir: str) -> List[str]:
    """The ``*.pth`` files of ``work_dir``, newest first.

    Newest is the highest number before ``.pth`` (``iter_N``/``epoch_N``),
    then the latest modification time; temporary ``.tmp-*`` files are left
    out.
    """
    if not osp.isdir(work_dir):
        return []
    files = [
        osp.join(work_dir, f) for f in os.listdir(work_dir)
        if f.endswith('.pth') and not f.startswith(TMP_PREFIX)
        and osp.isfile(osp.join(work_dir, f))
    ]

    def key(f):
        m = _STEP.search(osp.basename(f))
        return (int(m.group(1)) if m else -1, osp.getmtime(f))

    return sorted(files, key=key, reverse=True)


class ResumeError(RuntimeError):
    """No intact checkpoint to resume from, explained."""


def resolve_resume(work_dir: str, logger: str = 'current') -> Optional[str]:
    """The checkpoint that ``--resume`` (auto) should load from ``work_dir``.

    * ``last_checkpoint`` names an intact file: that file.
    * It names a missing or corrupt file, or holds garbage, or is absent
      while checkpoints exist: a warning naming ``last_checkpoint``, the
      file it named and why it cannot be used, and the newest intact
      ``*.pth`` of the work dir is returned instead (named in the warning).
    * No checkpoint at all and no ``last_checkpoint``: None (train from
      scratch, as MMEngine does).

    Raises:
        ResumeError: checkpoints or a ``last_checkpoint`` exist but none is
            intact; the message names each file, why, and the ways out.
    """
    save_file = osp.join(work_dir, 'last_checkpoint')
    named = None
    problem = None
    if osp.isfile(save_file):
        with open(save_file, 'rb') as f:
            raw = f.read(4096)
        try:
            named = raw.decode('utf-8').strip()
        except UnicodeDecodeError:
            named = None
            problem = (f'{save_file} holds bytes that are not a path '
                       f'({raw[:40]!r})')
        if named is not None:
            if not named:
                problem = (f'{save_file} is empty (a run killed while '
                           f'writing it leaves it so)')
                named = None
            else:
                if not osp.isabs(named) and not osp.exists(named):
                    cand = osp.join(work_dir, named)
                    named = cand if osp.exists(cand) else named
                why = is_intact(named)
                if why is None:
                    return named
                problem = (f'{save_file} names {named!r}, which cannot be '
                           f'used: {why}')
    candidates = checkpoints_in(work_dir)
    if named is None and problem is None and not candidates:
        return None  # a fresh work dir: train from scratch
    rejected = []
    for c in candidates:
        if named is not None and osp.abspath(c) == osp.abspath(named):
            continue
        why = is_intact(c)
        if why is None:
            if problem is None:
                problem = (f'{save_file} is missing although '
                           f'checkpoints exist')
            extra = ''.join(f'\n  skipped {r}: {w}' for r, w in rejected)
            print_log(
                f'--resume: {problem}. Resuming from the newest intact '
                f'checkpoint {c} instead.{extra}', logger=logger,
                level=30)
            return c
        rejected.append((c, why))
    lines = ''.join(f'\n  {r}: {w}' for r, w in rejected)
    raise ResumeError(
        f'--resume found no intact checkpoint in {work_dir}: '
        f'{problem or "every checkpoint is damaged"}.{lines}\n'
        f'Ways out: pass `--resume PATH` with a checkpoint you trust, or '
        f'delete {save_file} (and the damaged files) and run without '
        f'--resume to start from scratch.')


def check_resume_file(path: str) -> None:
    """Raise a clear error if the explicit ``--resume PATH`` is damaged.

    Raises:
        ResumeError: naming ``path``, why, and the newest intact checkpoint
            beside it, if any.
    """
    why = is_intact(path)
    if why is None:
        return
    others = [c for c in checkpoints_in(osp.dirname(path) or '.')
              if osp.abspath(c) != osp.abspath(path) and is_intact(c) is None]
    hint = (f' The newest intact checkpoint beside it is {others[0]}.'
            if others else '')
    raise ResumeError(f'--resume {path}: {why}.{hint}')
