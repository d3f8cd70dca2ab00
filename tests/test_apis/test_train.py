# Copyright (c) densecl_plugin contributors. All rights reserved.
"""``tools/train.py`` end to end: a real Runner on real photos, then resume.

These run what the CLI entry point runs (``tools/train.py`` calls
:func:`~densecl_plugin.apis.build_train_config` and
:func:`~densecl_plugin.apis.train`; the script itself runs in a subprocess
at the end), our registry scope, ``mmdet.ResNet`` across scopes, MMEngine's hooks, and our
DenseCL/MoCo v2 modules on the scikit-image photos.
"""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from densecl_plugin.apis import build_train_config, train
from densecl_plugin.utils.auto_values import resolve_auto_values

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DENSECL_CPU = osp.join(
    REPO, 'configs/densecl/densecl_resnet18_1xb16-coslr-640iters_folder-cpu.py')
MOCOV2_CPU = osp.join(
    REPO, 'configs/mocov2/mocov2_resnet18_1xb16-coslr-640iters_folder-cpu.py')


def main(config, work_dir=None, resume=None):
    """What ``python tools/train.py CONFIG [--work-dir D] [--resume [R]]``
    runs."""
    return train(build_train_config(config, work_dir, resume))


def _tiny_config(base: str, image_dir: str, out: str, max_iters: int,
                 start_iters: int = 2, schedule_iters: int = 4) -> str:
    """The CPU config shrunk to seconds: 32 px views, batch 4, K=12.

    The cosine schedule spans ``schedule_iters``; training stops after
    ``max_iters`` (fewer to simulate a crash).
    """
    cfg = Config.fromfile(base)
    cfg.train_dataloader.batch_size = 4
    cfg.train_dataloader.dataset.data_root = image_dir
    for t in cfg.train_dataloader.dataset.pipeline[1].transforms[0]:
        if t.type == 'RandomResizedCrop':
            t.size = 32
    cfg.model.queue_len = 12  # does not divide the batch: wraps
    cfg.train_cfg.max_iters = max_iters
    cfg.param_scheduler[0].T_max = cfg.param_scheduler[0].end = schedule_iters
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = 2
    cfg.default_hooks.checkpoint.max_keep_ckpts = -1
    # a hook of MMEngine's own, next to ours
    cfg.custom_hooks = [
        h for h in cfg.get('custom_hooks', []) if h.type == 'DenseCLHook'
    ]
    for h in cfg.custom_hooks:
        h.start_iters = start_iters
    cfg.custom_hooks.append(dict(type='EmptyCacheHook', after_iter=True))
    cfg.randomness = dict(seed=1234)
    cfg.dump(out)
    return out


def _scalars(work_dir: str):
    """Per-iteration scalars that LocalVisBackend wrote, keyed by step."""
    import glob
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                      'scalars.json')))
    rows = {}
    for f in files:
        with open(f) as fh:
            for line in fh:
                row = json.loads(line)
                rows[row['step']] = row
    return rows


def test_config_resolves_our_modules_mmengine_and_mmdet(tmp_path,
                                                        real_image_dir):
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner
    cfg = Config.fromfile(
        _tiny_config(DENSECL_CPU, real_image_dir, str(tmp_path / 'c.py'), 2))
    cfg.work_dir = str(tmp_path / 'w')
    assert cfg.default_scope == 'densecl_plugin'
    resolve_auto_values(cfg)  # what train() does before the Runner
    runner = Runner.from_cfg(cfg)
    model = runner.model
    assert type(model).__name__ == 'DenseCL'
    assert type(model).__module__.startswith('densecl_plugin.')
    assert type(model.backbone).__module__.startswith('mmdet.')
    assert DefaultScope.get_current_instance().scope_name == 'densecl_plugin'
    hook_types = {type(h).__name__ for h in runner.hooks}
    assert {'DenseCLHook', 'EmptyCacheHook', 'CheckpointHook'} <= hook_types


@pytest.mark.parametrize('base', [DENSECL_CPU, MOCOV2_CPU],
                         ids=['densecl', 'mocov2'])
def test_train_save_resume_matches_uninterrupted_run(tmp_path, real_image_dir,
                                                     base):
    """2 iterations, save, ``--resume``, 2 more == 4 iterations straight.

    Queues, pointers, the momentum encoder and the lambda warm-up (lambda = 0
    before iteration 3) must survive the resume, so the losses of iterations
    3 and 4 and the final states equal those of the uninterrupted run.
    """
    cfg4 = _tiny_config(base, real_image_dir, str(tmp_path / 'c4.py'), 4,
                        start_iters=3)
    cfg2 = _tiny_config(base, real_image_dir, str(tmp_path / 'c2.py'), 2,
                        start_iters=3)
    straight = str(tmp_path / 'straight')
    broken = str(tmp_path / 'broken')
    full = main(cfg4, straight)
    main(cfg2, broken)  # "crashes" after saving iter_2.pth
    assert osp.isfile(osp.join(broken, 'iter_2.pth'))
    resumed = main(cfg4, broken, resume='auto')  # --resume

    a, b = _scalars(straight), _scalars(broken)
    loss_keys = [k for k in a[4] if k.startswith('loss')]
    assert loss_keys
    for step in (3, 4):
        for key in loss_keys:
            assert b[step][key] == pytest.approx(a[step][key], abs=1e-5), \
                (step, key)
    if 'loss_dense' in a[4]:
        assert a[3]['loss_dense'] == 0 and b[3]['loss_dense'] == 0
        assert a[4]['loss_dense'] > 0 and b[4]['loss_dense'] > 0

    sa, sb = full.model.state_dict(), resumed.model.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        if key.startswith(('queue', 'encoder_k')):
            torch.testing.assert_close(sb[key], sa[key], rtol=0, atol=1e-5,
                                       msg=key)
    assert int(sb['queue_ptr']) == 4 * 4 % 12


def test_resume_path_and_missing_resume_file(tmp_path, real_image_dir):
    cfg2 = _tiny_config(DENSECL_CPU, real_image_dir, str(tmp_path / 'c.py'),
                        2)
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        main(cfg2, resume=str(tmp_path / 'nope.pth'))
    with pytest.raises(FileNotFoundError, match='config file not found'):
        main(str(tmp_path / 'missing.py'))


def test_build_train_config_options(tmp_path):
    from densecl_plugin.apis import build_train_config
    cfg = build_train_config(
        DENSECL_CPU, cfg_options={'model.queue_len': 64}, amp=True,
        auto_scale_lr=True, resume='auto')
    assert cfg.model.queue_len == 64
    assert cfg.work_dir.endswith(
        'densecl_resnet18_1xb16-coslr-640iters_folder-cpu')
    expected = ('AmpOptimWrapper' if torch.cuda.is_available() else
                'densecl_plugin.CPUAmpOptimWrapper')
    assert cfg.optim_wrapper.type == expected
    assert cfg.auto_scale_lr.enable is True
    assert cfg.resume is True and cfg.load_from is None
    ckpt = tmp_path / 'x.pth'
    ckpt.write_bytes(b'')
    cfg = build_train_config(DENSECL_CPU, resume=str(ckpt), work_dir='w')
    assert cfg.resume is True and cfg.load_from == str(ckpt)
    assert cfg.work_dir == 'w'


def test_script_trains_and_refuses_a_missing_resume_file(tmp_path,
                                                         real_image_dir):
    """The real ``tools/train.py``: two iterations, then ``--resume PATH``
    of a file that is not there."""
    cfg = _tiny_config(DENSECL_CPU, real_image_dir, str(tmp_path / 'c.py'),
                       2)
    work_dir = str(tmp_path / 'w')
    env = dict(os.environ, PYTHONPATH='', OMP_WAIT_POLICY='PASSIVE')

    def run(*args):
        return subprocess.run(
            [sys.executable, osp.join(REPO, 'tools', 'train.py'), cfg,
             '--work-dir', work_dir, *args], cwd=str(tmp_path), env=env,
            capture_output=True, text=True, timeout=600)

    proc = run('--cfg-options', 'model.queue_len=8')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))
    assert int(torch.load(osp.join(work_dir, 'iter_2.pth'))['state_dict']
               ['queue_ptr']) == 2 * 4 % 8
    proc = run('--resume', str(tmp_path / 'nope.pth'))
    assert proc.returncode != 0 and 'nope.pth' in proc.stderr
