# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Faults a real run meets (docs/faults.md): a diverging lr, a truncated or
killed-mid-save checkpoint, a garbage ``last_checkpoint``, two runs in one
work dir. Real Runners on the tiny CPU config of ``test_train``; the kill
and the second run are real processes."""
import glob
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from test_apis.test_train import DENSECL_CPU, REPO, _tiny_config

from densecl_plugin.apis import build_train_config, train
from densecl_plugin.engine.hooks import NonFiniteLossError
from densecl_plugin.registry import HOOKS
from densecl_plugin.utils.checkpoint_integrity import (ResumeError, is_intact,
                                                       resolve_resume)
from densecl_plugin.utils.work_dir_lock import (LOCK_NAME, WorkDirLock,
                                                WorkDirLockedError)


@HOOKS.register_module(force=True)
class _QueueAtStartHook(Hook):  # registered for the resume tests only
    """Records the queues right after ``load_or_resume`` (before_train)."""

    seen = []
    priority = 'VERY_HIGH'

    def before_train(self, runner):
        sd = runner.model.state_dict()
        _QueueAtStartHook.seen.append(
            (runner.iter,
             {k: v.clone() for k, v in sd.items() if k.startswith('queue')}))


def _cfg(tmp_path, image_dir, max_iters=4, name='c.py', **options):
    path = _tiny_config(DENSECL_CPU, image_dir, str(tmp_path / name),
                        max_iters, schedule_iters=max(max_iters, 4))
    cfg = Config.fromfile(path)
    cfg.merge_from_dict(options)
    cfg.dump(path)
    return path


def _run(config, work_dir, resume=None, **options):
    return train(build_train_config(config, work_dir, resume,
                                    cfg_options=options or None))


def _log(work_dir):
    return ''.join(open(f).read()
                   for f in glob.glob(osp.join(work_dir, '*', '*.log')))


def _finite(path):
    sd = torch.load(path, weights_only=False)['state_dict']
    return all(bool(torch.isfinite(v).all()) for v in sd.values()
               if torch.is_tensor(v) and v.is_floating_point())


def _resume_and_check_queues(config, work_dir, intact, max_iters):
    _QueueAtStartHook.seen.clear()
    cfg = Config.fromfile(config)
    cfg.custom_hooks.append(dict(type='_QueueAtStartHook'))
    cfg.train_cfg.max_iters = max_iters
    cfg.dump(config)
    runner = _run(config, work_dir, 'auto')
    assert runner.iter == max_iters
    ref = torch.load(intact, weights_only=False)['state_dict']
    it, queues = _QueueAtStartHook.seen[0]
    assert it == torch.load(intact, weights_only=False)['meta']['iter']
    assert queues
    for k, v in queues.items():  # the queues of the intact checkpoint
        torch.testing.assert_close(v, ref[k], rtol=0, atol=0, msg=k)
    return runner


@pytest.mark.parametrize('interval', [1, 1000], ids=['every-iter', 'sparse'])
def test_diverging_lr_stops_named_and_saves_no_nan(tmp_path, real_image_dir,
                                                   interval):
    """lr=1e6 diverges within a few iterations: NonFiniteLossError naming the
    iteration, loss terms, lr and the keys; every checkpoint on disk is
    finite and --resume picks the last good one. With a sparse interval
    the weights are not checked after each step, and the check before a
    save still refuses the NaN checkpoint."""
    config = _cfg(tmp_path, real_image_dir, 8)
    work_dir = str(tmp_path / 'w')
    with pytest.raises(NonFiniteLossError) as info:
        _run(config, work_dir, **{'optim_wrapper.optimizer.lr': 1e6,
                                  'default_hooks.non_finite.interval':
                                  interval})
    msg = str(info.value)
    for part in ('Training diverged at iteration', 'loss_single=', 'lr: lr=',
                 'optim_wrapper.optimizer.lr', '--amp'):
        assert part in msg, part
    ckpts = glob.glob(osp.join(work_dir, '*.pth'))
    assert ckpts, 'the first iterations are finite and saved'
    assert all(_finite(c) for c in ckpts)
    last = resolve_resume(work_dir)
    assert last == max(ckpts, key=lambda c: int(c[:-4].split('_')[-1]))
    assert not osp.exists(osp.join(work_dir, LOCK_NAME))  # released


def test_without_the_hook_a_diverging_run_saves_nan(tmp_path,
                                                    real_image_dir):
    """The fault the hook guards against is real (issue 22's report)."""
    config = _cfg(tmp_path, real_image_dir, 8)
    work_dir = str(tmp_path / 'w')
    _run(config, work_dir, **{'optim_wrapper.optimizer.lr': 1e6,
                              'default_hooks.non_finite': None})
    assert not _finite(osp.join(work_dir, 'iter_8.pth'))


def test_truncated_newest_checkpoint_resumes_from_previous(tmp_path,
                                                           real_image_dir):
    config = _cfg(tmp_path, real_image_dir, 4)
    work_dir = str(tmp_path / 'w')
    _run(config, work_dir)
    newest, intact = (osp.join(work_dir, f'iter_{i}.pth') for i in (4, 2))
    with open(newest, 'r+b') as f:
        f.truncate(osp.getsize(newest) // 2)
    assert 'not a whole torch checkpoint' in is_intact(newest)
    _resume_and_check_queues(config, work_dir, intact, 6)
    log = _log(work_dir)
    assert f"names '{newest}', which cannot be used" in log
    assert f'Resuming from the newest intact checkpoint {intact}' in log


def test_explicit_resume_of_a_truncated_file_is_named(tmp_path,
                                                      real_image_dir):
    config = _cfg(tmp_path, real_image_dir, 4)
    work_dir = str(tmp_path / 'w')
    _run(config, work_dir)
    newest = osp.join(work_dir, 'iter_4.pth')
    with open(newest, 'r+b') as f:
        f.truncate(1000)
    with pytest.raises(ResumeError, match=r'iter_4\.pth.*newest intact '
                       r'checkpoint beside it is .*iter_2\.pth'):
        _run(config, work_dir, newest)


@pytest.mark.parametrize('content', [b'garbage', b'', b'\xff\xfe\x00'],
                         ids=['garbage', 'empty', 'binary'])
def test_garbage_last_checkpoint_is_explained(tmp_path, content):
    work_dir = str(tmp_path)
    save_file = osp.join(work_dir, 'last_checkpoint')
    with open(save_file, 'wb') as f:
        f.write(content)
    with pytest.raises(ResumeError) as info:
        resolve_resume(work_dir)
    msg = str(info.value)
    assert save_file in msg and '--resume PATH' in msg and \
        'without --resume' in msg


def test_garbage_last_checkpoint_falls_back_to_a_checkpoint(tmp_path,
                                                            real_image_dir):
    config = _cfg(tmp_path, real_image_dir, 2)
    work_dir = str(tmp_path / 'w')
    _run(config, work_dir)
    save_file = osp.join(work_dir, 'last_checkpoint')
    with open(save_file, 'w') as f:
        f.write('garbage')
    _resume_and_check_queues(config, work_dir,
                             osp.join(work_dir, 'iter_2.pth'), 4)
    assert f"{save_file} names 'garbage'" in _log(work_dir)


_KILLER = textwrap.dedent('''
    import os, signal, sys
    from mmengine.fileio.backends import LocalBackend
    put = LocalBackend.put

    def put_then_die(self, obj, filepath):
        """Write half the checkpoint, then SIGKILL this process."""
        if os.environ['KILL_AT'] in os.path.basename(str(filepath)):
            with open(filepath, 'wb') as f:
                f.write(obj[:len(obj) // 2])
                f.flush()
                os.fsync(f.fileno())
            os.kill(os.getpid(), signal.SIGKILL)
        return put(self, obj, filepath)

    LocalBackend.put = put_then_die
    sys.argv = ['train.py'] + sys.argv[1:]
    sys.path.insert(0, {repo!r})
    sys.path.insert(0, {tools!r})
    import train
    train.main()
''')


@pytest.mark.parametrize('atomic', [True, False], ids=['atomic', 'in-place'])
def test_kill9_during_a_save_resumes_from_the_intact_one(tmp_path,
                                                         real_image_dir,
                                                         atomic):
    """A real ``tools/train.py`` SIGKILLs itself half-way through writing
    iter_4.pth. Atomic (the default): no iter_4.pth appears and
    last_checkpoint still names iter_2.pth. In place (MMEngine's own save,
    AtomicSaveHook off): a truncated iter_4.pth that last_checkpoint does
    not name. Either way --resume continues from iter_2.pth with its
    queues."""
    config = _cfg(tmp_path, real_image_dir, 4)
    work_dir = str(tmp_path / 'w')
    script = tmp_path / 'killer.py'
    script.write_text(_KILLER.format(repo=REPO,
                                     tools=osp.join(REPO, 'tools')))
    args = [sys.executable, str(script), config, '--work-dir', work_dir]
    if not atomic:
        args += ['--cfg-options', 'default_hooks.atomic_save=None']
    env = dict(os.environ, KILL_AT='iter_4', OMP_WAIT_POLICY='PASSIVE')
    proc = subprocess.run(args, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    intact = osp.join(work_dir, 'iter_2.pth')
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert f.read().strip() == intact
    newest = osp.join(work_dir, 'iter_4.pth')
    if atomic:
        assert not osp.exists(newest)
        assert glob.glob(osp.join(work_dir, '.tmp-*iter_4.pth'))
    else:
        assert is_intact(newest) is not None
    # the lock of the killed run is stale and taken over
    assert json.load(open(osp.join(work_dir, LOCK_NAME)))['pid'] != \
        os.getpid()
    runner = _resume_and_check_queues(config, work_dir, intact, 6)
    assert int(runner.model.state_dict()['queue_ptr']) == 6 * 4 % 12
    assert is_intact(osp.join(work_dir, 'iter_6.pth')) is None


def test_a_second_run_in_a_live_work_dir_is_refused(tmp_path,
                                                    real_image_dir):
    """A real second process holds the work dir: refused, naming the lock,
    the pid and the host; once it is killed (a stale lock) the run takes
    the lock over and trains."""
    config = _cfg(tmp_path, real_image_dir, 2)
    work_dir = str(tmp_path / 'w')
    holder = subprocess.Popen(
        [sys.executable, '-c',
         'import sys; sys.path.insert(0, sys.argv[1]); '
         'from densecl_plugin.utils.work_dir_lock import WorkDirLock; '
         'WorkDirLock(sys.argv[2]).acquire(); print("locked", flush=True); '
         'sys.stdin.read()', REPO, work_dir],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'locked'
        with pytest.raises(WorkDirLockedError,
                           match=rf'{LOCK_NAME}.*pid {holder.pid} on'):
            _run(config, work_dir)
        assert not glob.glob(osp.join(work_dir, '*.pth'))
    finally:
        holder.kill()
        holder.wait()
    _run(config, work_dir)  # stale now: taken over
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))
    assert not osp.exists(osp.join(work_dir, LOCK_NAME))


def test_stale_lock_is_reported_and_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                          capture_output=True, text=True)
    pid = int(dead.stdout)
    import socket
    with open(tmp_path / LOCK_NAME, 'w') as f:
        json.dump(dict(pid=pid, hostname=socket.gethostname()), f)
    with WorkDirLock(str(tmp_path)) as lock:
        assert json.load(open(lock.path))['pid'] == os.getpid()
    assert not (tmp_path / LOCK_NAME).exists()


def test_image_modes_and_sizes_go_through_the_pipeline(tmp_path):
    """Issue 22's 'already holds' list: every mode and size gives two views
    (grayscale, 16-bit, RGBA, palette, CMYK, EXIF-rotated, webp, bmp, tif,
    1x1, 10x10, 3000x2000)."""
    import numpy as np
    from PIL import Image

    from densecl_plugin.registry import DATASETS
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8))
    folder = tmp_path / 'modes'
    folder.mkdir()
    rgb.convert('L').save(folder / 'gray.png')
    Image.fromarray(rng.integers(0, 65535, (24, 32),
                                 dtype=np.uint16)).save(folder / 'i16.png')
    rgb.convert('RGBA').save(folder / 'rgba.png')
    rgb.convert('P').save(folder / 'palette.png')
    rgb.convert('CMYK').save(folder / 'cmyk.jpg')
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90
    rgb.save(folder / 'exif.jpg', exif=exif)
    for ext in ('webp', 'bmp', 'tif'):
        rgb.save(folder / f'rgb.{ext}')
    rgb.resize((1, 1)).save(folder / 'one.png')
    rgb.resize((10, 10)).save(folder / 'ten.png')
    rgb.resize((3000, 2000)).save(folder / 'big.jpg')
    cfg = Config.fromfile(DENSECL_CPU).train_dataloader.dataset
    cfg.data_root = str(folder)
    from mmengine.registry import DefaultScope

    import densecl_plugin.datasets  # noqa: F401
    with DefaultScope.overwrite_default_scope('densecl_plugin'):
        dataset = DATASETS.build(cfg)
    assert len(dataset) == 12
    for i in range(len(dataset)):
        views = dataset[i]['inputs']
        assert len(views) == 2 and all(v.shape == (3, 80, 80) for v in views)
