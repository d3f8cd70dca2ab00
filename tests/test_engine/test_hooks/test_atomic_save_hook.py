# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The temporary file a killed save leaves is removed at the next start;
a live process's temporary file (a save in progress) is kept."""
import os
import subprocess
import sys
from types import SimpleNamespace

from densecl_plugin.engine.hooks import AtomicSaveHook
from densecl_plugin.utils.checkpoint_integrity import remove_stale_tmp


def _dead_pid():
    out = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                         capture_output=True, text=True, check=True)
    return int(out.stdout)


def test_stale_tmp_removed_live_kept(tmp_path):
    dead = tmp_path / f'.tmp-{_dead_pid()}-iter_4.pth'
    live = tmp_path / f'.tmp-{os.getpid()}-iter_6.pth'
    other = tmp_path / 'iter_2.pth'
    for f in (dead, live, other):
        f.write_bytes(b'x' * 10)
    assert remove_stale_tmp(str(tmp_path)) == [str(dead)]
    assert not dead.exists() and live.exists() and other.exists()


def test_hook_cleans_the_work_dir_at_start(tmp_path):
    dead = tmp_path / f'.tmp-{_dead_pid()}-iter_4.pth'
    dead.write_bytes(b'half a checkpoint')
    saved = []
    runner = SimpleNamespace(work_dir=str(tmp_path),
                             save_checkpoint=lambda d, f, **k: saved.append(f))
    AtomicSaveHook().before_run(runner)
    assert not dead.exists()
    assert runner.save_checkpoint._densecl_atomic
