# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The demo's stage logic without training: config edits on the real demo
configs, fingerprints, and when a finished stage is reused."""
import json
import os.path as osp

import pytest
from mmengine.config import Config

from densecl_lab.demo import FULL, QUICK, Demo
from densecl_lab.demo.stages import (CONFIGS, file_digest, set_data_root,
                                     set_max_iters)
from densecl_lab.utils.staged_run import (default_configs_dir, fingerprint,
                                          finished)

CONFIGS_DIR = default_configs_dir()


def _load(key):
    return Config.fromfile(osp.join(CONFIGS_DIR, CONFIGS[key]))


@pytest.mark.parametrize('key', sorted(CONFIGS))
def test_demo_configs_exist_and_are_iteration_based(key):
    cfg = _load(key)
    assert cfg.train_cfg.type == 'IterBasedTrainLoop'
    assert cfg.randomness.seed == 0
    # the file name states the schedule: ..._1xb<batch>-...<iters>iters_...
    name = osp.basename(CONFIGS[key])
    assert f'1xb{cfg.train_dataloader.batch_size}-' in name
    assert f'-{cfg.train_cfg.max_iters}iters_' in name or \
        f'coslr-{cfg.train_cfg.max_iters}iters_' in name


def test_pretraining_configs_differ_only_in_the_algorithm():
    moco, dense = _load('mocov2').to_dict(), _load('densecl').to_dict()
    for key in ('train_dataloader', 'optim_wrapper', 'param_scheduler',
                'train_cfg', 'randomness'):
        assert moco[key] == dense[key], key
    assert moco['model']['backbone'] == dense['model']['backbone']
    for key in ('queue_len', 'momentum', 'feat_dim'):
        assert moco['model'][key] == dense['model'][key], key
    assert (moco['model']['type'], dense['model']['type']) == ('MoCoV2',
                                                              'DenseCL')


def test_set_max_iters_moves_schedule_warmup_and_checkpoints():
    cfg = _load('detection')  # LinearLR warm-up 0-10, cosine 0-60
    set_max_iters(cfg, 6)
    assert cfg.train_cfg.max_iters == 6 and cfg.train_cfg.val_interval == 6
    warmup, cosine = cfg.param_scheduler
    assert (warmup.end, cosine.end, cosine.T_max) == (6, 6, 6)
    assert cfg.default_hooks.checkpoint.interval == 6
    set_max_iters(cfg, 3)
    assert (warmup.end, cosine.end, cosine.T_max) == (3, 3, 3)

    cfg = _load('densecl')
    set_max_iters(cfg, 500)  # longer: the cosine follows, nothing clipped
    assert cfg.param_scheduler[0].T_max == 500
    assert cfg.param_scheduler[0].end == 500
    with pytest.raises(ValueError, match='iters must be >= 1'):
        set_max_iters(cfg, 0)


def test_set_data_root_reaches_wrapped_datasets():
    cfg = _load('detection')  # train: ConcatDataset of VOC2007 + VOC2012
    assert set_data_root(cfg.train_dataloader, '/x/VOCdevkit') == 2
    assert [d.data_root for d in cfg.train_dataloader.dataset.datasets] == [
        '/x/VOCdevkit'] * 2
    assert set_data_root(cfg.val_dataloader, '/x/VOCdevkit') == 1
    assert set_data_root(dict(dataset=dict(type='X')), '/y') == 0


def test_fingerprint_is_stable_and_sensitive():
    cfg = _load('segmentation')
    a = fingerprint(config=cfg, backbone='abc')
    assert a == fingerprint(config=_load('segmentation'), backbone='abc')
    assert a != fingerprint(config=cfg, backbone='abd')
    cfg.train_cfg.max_iters += 1
    assert a != fingerprint(config=cfg, backbone='abc')


def test_finished_reuses_only_matching_results(tmp_path):
    path = tmp_path / 'result.json'
    assert finished(str(path), 'f1') is None  # nothing yet
    path.write_text(json.dumps(dict(fingerprint='f1', value=3)))
    assert finished(str(path), 'f1') == dict(fingerprint='f1', value=3)
    assert finished(str(path), 'f2') is None  # inputs changed
    assert finished(str(path), 'f1', force=True) is None
    path.write_text('{not json')
    assert finished(str(path), 'f1') is None  # a half-written result


def test_file_digest(tmp_path):
    import hashlib
    path = tmp_path / 'f.bin'
    path.write_bytes(b'densecl' * 1000)
    assert file_digest(str(path)) == hashlib.sha256(
        b'densecl' * 1000).hexdigest()


def test_quick_settings_only_shorten(tmp_path):
    """Quick runs change lengths and batch sizes, never the models or data;
    the full run uses the configs as they are."""
    assert FULL.pretrain_iters is None and FULL.detection_iters is None
    manifest = dict(
        unlabeled=dict(root='/pool', images=405),
        detection=dict(data_root='/voc'),
        segmentation=dict(data_root='/nuclei'))
    full = Demo(str(tmp_path / 'f'), 'd', None, FULL)
    quick = Demo(str(tmp_path / 'q'), 'd', None, QUICK)
    for demo in (full, quick):
        demo.manifest = manifest
    for algo in ('mocov2', 'densecl'):
        f, q = full.pretrain_config(algo), quick.pretrain_config(algo)
        assert f.to_dict()['model'] == q.to_dict()['model']
        assert f.train_dataloader.dataset.data_root == '/pool'
        assert f.train_cfg.max_iters == _load(algo).train_cfg.max_iters
        assert q.train_cfg.max_iters == QUICK.pretrain_iters
        assert q.train_dataloader.batch_size == QUICK.pretrain_batch_size
    hook = [h for h in quick.pretrain_config('densecl').custom_hooks
            if h['type'] == 'DenseCLHook'][0]
    assert hook['start_iters'] == QUICK.densecl_start_iters

    for task, root in (('detection', '/voc'), ('segmentation', '/nuclei')):
        random = full.finetune_config(task, None)
        assert random.model.init_cfg is None
        pre = full.finetune_config(task, '/b.pth')
        assert pre.model.init_cfg.checkpoint == '/b.pth'
        assert pre.model.init_cfg.type == 'densecl_plugin.DenseCLPretrained'
        r, p = random.to_dict(), pre.to_dict()
        r['model'].pop('init_cfg'), p['model'].pop('init_cfg')
        assert r == p  # only the initialisation differs
        assert pre.default_hooks.checkpoint is None
        q = quick.finetune_config(task, None)
        assert q.train_cfg.max_iters == getattr(QUICK, f'{task}_iters')
        assert q.val_dataloader.dataset.indices == QUICK.val_max_images
        roots = []
        for key in ('train_dataloader', 'val_dataloader'):
            ds = pre[key].dataset
            roots += [d.data_root for d in ds.get('datasets', [ds])]
        assert set(roots) == {root}


def test_default_work_dirs_keep_quick_apart(monkeypatch):
    import densecl_lab.demo.stages as pipeline
    seen = {}

    def fake_run(self):
        seen[self.settings.name] = self.work_dir
        return {}
    monkeypatch.setattr(pipeline.Demo, 'run', fake_run)
    pipeline.run_demo(quick=True)
    pipeline.run_demo(quick=False)
    assert seen == {'quick': osp.join('work_dirs', 'demo_quick'),
                    'full': osp.join('work_dirs', 'demo')}


def test_missing_config_is_named(tmp_path):
    demo = Demo(str(tmp_path), 'd', None, FULL, configs_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match='demo config .densecl.'):
        demo.config('densecl')


def test_configs_default_to_the_demo_data_layout():
    """Run alone (tools/train.py), each config reads what the data stage of
    ``make demo`` writes under its default ``data/demo``."""
    from densecl_lab.demo.data import SUBDIRS
    expected = dict(mocov2='unlabeled', densecl='unlabeled',
                    detection='VOCdevkit', segmentation='nuclei')
    for key, sub in expected.items():
        assert sub in SUBDIRS
        cfg = _load(key)
        roots = set()
        for loader in ('train_dataloader', 'val_dataloader'):
            if cfg.get(loader) is None:
                continue
            ds = cfg[loader].dataset
            roots |= {osp.normpath(d.data_root)
                      for d in ds.get('datasets', [ds])}
        assert roots == {osp.join('data', 'demo', sub)}, (key, roots)


def test_try_load_json_is_none_for_missing_or_broken(tmp_path):
    from densecl_lab.utils.staged_run import try_load_json
    path = tmp_path / 'curve.json'
    assert try_load_json(str(path)) is None
    path.write_text('{"held_out": [1, 2')
    assert try_load_json(str(path)) is None
    path.write_text('{"held_out": [1, 2]}')
    assert try_load_json(str(path)) == dict(held_out=[1, 2])


def test_held_out_images_keep_the_manifest_order():
    from densecl_lab.demo.data import held_out_images
    manifest = dict(held_out=['c.png', 'a.png', 'b.png'])
    assert held_out_images(manifest) == ['c.png', 'a.png', 'b.png']
    assert held_out_images(manifest, 2) == ['c.png', 'a.png']
    assert held_out_images(manifest, 5) == ['c.png', 'a.png', 'b.png']
    assert held_out_images(manifest) is not manifest['held_out']  # a copy


def test_a_run_inside_a_parent_shares_its_manifest_log_and_record(tmp_path):
    parent = Demo(str(tmp_path / 'parent'), 'd', None, FULL)
    parent.manifest = dict(held_out=['a.png', 'b.png'])
    child = Demo(str(tmp_path / 'child'), 'd', None, QUICK, parent=parent)
    assert child.work_dir == str(tmp_path / 'child')
    assert child.log_file == parent.log_file == str(tmp_path / 'parent' / 'demo.log')
    assert child.manifest is parent.manifest
    # a stage the child runs is in the parent's record
    child._stage('one', str(tmp_path / 'child' / 'result.json'), 'f', lambda: dict(x=1))
    assert [st['stage'] for st in parent.stage_status] == ['one']
    alone = Demo(str(tmp_path / 'alone'), 'd', None, QUICK)
    assert alone.manifest == {} and alone.stage_status == []
    assert alone.log_file == str(tmp_path / 'alone' / 'demo.log')


def test_demo_and_study_settings_share_one_declaration():
    from dataclasses import fields

    from densecl_lab.demo.stages import DemoSettings, StageSettings
    from densecl_lab.study import StudySettings
    shared = {f.name for f in fields(StageSettings)}
    assert {'pretrain_batch_size', 'detection_iters', 'corr_seeds',
            'corr_view_size'} <= shared
    for cls in (DemoSettings, StudySettings):
        assert issubclass(cls, StageSettings)
        assert shared <= {f.name for f in fields(cls)}
    # the demo's name is required, the study's defaults to the full plan
    with pytest.raises(TypeError):
        DemoSettings()
    assert StudySettings().name == 'full'
    assert QUICK.name == 'quick' and QUICK.corr_seeds == (1000, )
