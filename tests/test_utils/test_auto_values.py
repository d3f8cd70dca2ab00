# Copyright (c) densecl_plugin contributors. All rights reserved.
"""``utils.auto_values``: each rule against a reference written here, explicit
values winning, clear errors naming the key, the resolved table of
``docs/auto_values.md`` recomputed from the shipped CPU config, MMEngine's own
``auto_scale_lr`` for the linear rule, and one real ``tools/train.py`` run
that logs the table and saves it in the work dir."""
import copy
import json
import math
import os
import os.path as osp
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config

from densecl_plugin.utils import auto_values as av

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DENSECL_CPU = osp.join(
    ROOT, 'configs/densecl/densecl_resnet18_1xb16-coslr-640iters_folder-cpu.py')
MOCOV2_CPU = osp.join(
    ROOT, 'configs/mocov2/mocov2_resnet18_1xb16-coslr-640iters_folder-cpu.py')
COCO = osp.join(ROOT, 'configs/densecl/densecl_resnet50_8xb32-coslr-800e_coco.py')
DOC = osp.join(ROOT, 'docs/auto_values.md')


def _images(folder, n):
    import cv2
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        cv2.imwrite(osp.join(folder, f'{i}.png'),
                    rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))
    return folder


def _rows(rows):
    return {r['key']: r for r in rows}


# the rules -------------------------------------------------------------------
def _ref_queue(n, total):
    """K by enumeration: the powers of two, the largest with a share of at
    most n/4 ... (the rule written out differently)."""
    powers = [2**i for i in range(0, 17)]  # 1 .. 65536
    quarter = [k for k in powers if k <= n / 4] or [1]
    half = [k for k in powers if k <= n / 2] or [1]
    step = [k for k in powers if k >= total] or [65536]
    return min(65536, max(quarter[-1], min(step[0], half[-1])))


@pytest.mark.parametrize('n', [1, 3, 7, 50, 63, 64, 100, 405, 1000, 5000,
                               118287, 262143, 262144, 1281167])
@pytest.mark.parametrize('total', [1, 4, 16, 128, 1024, 2048])
def test_queue_len_rule(n, total):
    K = av.auto_queue_len(n, total)
    assert K == _ref_queue(n, total)
    assert K & (K - 1) == 0 and 1 <= K <= av.MAX_QUEUE
    if n >= 2:  # never above what the sanity hook accepts on small data
        assert K <= n / 2
        assert av.own_key_share(K, n) <= 1 / 8 + 1e-12


def test_queue_len_known_values():
    assert av.auto_queue_len(405, 16) == 64  # the measured recipe
    assert av.auto_queue_len(50, 16) == 16
    assert av.auto_queue_len(1281167, 256) == 65536  # the paper's
    assert av.auto_queue_len(5000, 2048) == 2048  # a step's keys fit


def test_split_bn_rule():
    assert av.auto_split_bn_groups(16, 1) == 2
    assert av.auto_split_bn_groups(4, 1) == 2
    assert av.auto_split_bn_groups(2, 1) == 1  # groups of 1 image
    assert av.auto_split_bn_groups(15, 1) == 1  # 2 does not divide it
    assert av.auto_split_bn_groups(16, 8) == 1  # DDP: shuffle BN


def test_warmup_rule():
    assert av.auto_warmup_iters(405, 640) == 64
    assert av.auto_warmup_iters(99_999, 640) == 64
    assert av.auto_warmup_iters(100_000, 640) == 0
    assert av.auto_warmup_iters(50, 5) == 1


def test_lr_rules():
    assert av.scaled_lr(0.03, 256, 16, 'sqrt') == pytest.approx(0.0075)
    assert av.sqrt_rule_lr(16) == pytest.approx(0.03 / 4)
    assert av.scaled_lr(0.03, 256, 16, 'linear') == pytest.approx(0.001875)
    assert av.scaled_lr(0.1, 16, 64, 'sqrt') == pytest.approx(0.2)


@pytest.mark.parametrize('depth', [18, 50])
def test_dense_grid_matches_a_real_resnet(depth):
    from mmdet.models import ResNet
    net = ResNet(depth=depth, out_indices=(3, ))
    net.eval()  # mmdet's ResNet.train returns None
    for size in (32, 48, 64, 72, 80, 96, 112, 130, 160, 224):
        with torch.no_grad():
            out = net(torch.zeros(1, 3, size, size))[-1]
        assert av.dense_grid(size, dict(type='mmdet.ResNet', depth=depth)) \
            == out.shape[-1], size
    assert av.dense_grid(80, dict(type='ViT')) is None
    assert av.dense_grid(80, dict(type='ResNet', strides=(1, 2, 2, 1))) \
        is None


@pytest.mark.parametrize('launcher,var', [('pytorch', 'WORLD_SIZE'),
                                          ('slurm', 'SLURM_NTASKS'),
                                          ('mpi', 'OMPI_COMM_WORLD_SIZE')])
def test_world_size_by_launcher(monkeypatch, launcher, var):
    for v in ('WORLD_SIZE', 'SLURM_NTASKS', 'OMPI_COMM_WORLD_SIZE'):
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv(var, '8')
    assert av.launch_world_size(launcher) == 8
    assert av.launch_world_size('none') == 1
    monkeypatch.setenv(var, 'eight')
    with pytest.raises(ValueError, match=f'{var}=.eight.'):
        av.launch_world_size(launcher)


def test_own_key_share_reference():
    # r**2 / 2 up to r = 1, then 1 - (2 - r)**2 / 2, 1 from r = 2
    assert av.own_key_share(100, 400) == pytest.approx(1 / 32)
    assert av.own_key_share(400, 400) == pytest.approx(0.5)
    assert av.own_key_share(600, 400) == pytest.approx(0.875)
    assert av.own_key_share(900, 400) == 1


# resolving a config ------------------------------------------------------------
def test_cpu_config_resolves_on_a_real_folder(tmp_path):
    cfg = Config.fromfile(DENSECL_CPU)
    cfg.train_dataloader.dataset.data_root = _images(str(tmp_path / 'i'), 50)
    rows = _rows(av.resolve_auto_values(cfg))
    assert rows['data set size']['value'] == 50
    assert rows['data set size']['source'] == 'counted'
    assert cfg.model.queue_len == rows['model.queue_len']['value'] == 16
    assert cfg.model.split_bn_groups == 2
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(0.0075)
    assert cfg.auto_scale_lr.enable is False  # MMEngine must not rescale
    assert [h.start_iters for h in cfg.custom_hooks
            if h.type == 'DenseCLHook'] == [64]
    assert rows['view size (RandomResizedCrop)']['rule'] == 'C5 grid 3x3'
    # resolving again changes nothing and adds no second hook
    before = copy.deepcopy(cfg.to_dict())
    assert _rows(av.resolve_auto_values(cfg)) == rows
    assert cfg.to_dict() == before
    assert [h.type for h in cfg.custom_hooks].count(av.HOOK_TYPE) == 1


def test_count_dataset_reads_a_folder_or_a_list_file(tmp_path):
    images = _images(str(tmp_path / 'img'), 5)
    cfg = Config(dict(train_dataloader=dict(dataset=dict(
        type='UnlabeledImageDataset', data_root=images,
        pipeline=[dict(type='LoadImageFromFile')]))))
    assert av.count_dataset(cfg) == 5
    with open(tmp_path / 'list.txt', 'w') as f:
        f.write('0.png 3\n2.png 1\n# a comment\n4.png\n')
    cfg.train_dataloader.dataset.update(ann_file=str(tmp_path / 'list.txt'))
    assert av.count_dataset(cfg) == 3


def test_explicit_values_win(tmp_path):
    cfg = Config.fromfile(DENSECL_CPU)
    cfg.merge_from_dict({'model.queue_len': 32, 'model.split_bn_groups': 4,
                         'optim_wrapper.optimizer.lr': 0.01})
    for h in cfg.custom_hooks:
        if h.type == 'DenseCLHook':
            h.start_iters = 7
    rows = _rows(av.resolve_auto_values(cfg, world_size=1, dataset_size=400))
    for key, value in (('model.queue_len', 32), ('model.split_bn_groups', 4),
                       ('optim_wrapper.optimizer.lr', 0.01),
                       ('DenseCLHook.start_iters', 7)):
        assert rows[key]['value'] == value and rows[key]['source'] == \
            'explicit', key
    assert cfg.model.queue_len == 32 and cfg.optim_wrapper.optimizer.lr == \
        0.01


def test_no_count_when_nothing_needs_it(tmp_path):
    cfg = Config.fromfile(COCO)  # data/coco is not here
    rows = _rows(av.resolve_auto_values(cfg, world_size=8))
    assert rows['data set size']['value'] is None
    assert rows['model.queue_len']['value'] == 65536
    assert rows['optim_wrapper.optimizer.lr']['value'] == 0.3


def test_other_models_are_left_alone():
    cfg = Config(dict(model=dict(type='mmdet.FasterRCNN'), custom_hooks=[]))
    assert av.resolve_auto_values(cfg) == []
    assert cfg.custom_hooks == []


@pytest.mark.parametrize('change,match', [
    ({'model.queue_len': 'big'}, r"model.queue_len must be 'auto' or a "
     r"number, got 'big'"),
    ({'model.queue_len': 0}, r"model.queue_len must be an int >= 1 or "
     r"'auto', got 0"),
    ({'model.split_bn_groups': 'Auto'}, 'model.split_bn_groups must be'),
    ({'optim_wrapper.optimizer.lr': -1.}, 'optim_wrapper.optimizer.lr must '
     'be a positive number'),
    ({'auto_scale_lr.rule': 'cubic'}, r"auto_scale_lr.rule must be one of "
     r"\('linear', 'sqrt'\), got 'cubic'"),
    ({'auto_scale_lr.base_lr': None}, 'auto_scale_lr.base_lr must be a '
     'positive number'),
    ({'train_dataloader.batch_size': 0}, 'train_dataloader.batch_size must '
     'be an int >= 1'),
])
def test_bad_values_name_the_key(change, match):
    cfg = Config.fromfile(DENSECL_CPU)
    cfg.merge_from_dict(change)
    with pytest.raises(ValueError, match=match):
        av.resolve_auto_values(cfg, world_size=1, dataset_size=400)


def test_auto_lr_needs_its_base():
    cfg = Config.fromfile(DENSECL_CPU)
    del cfg.auto_scale_lr['base_lr']
    with pytest.raises(ValueError, match=r"optim_wrapper.optimizer.lr='auto'"
                       r" needs auto_scale_lr = dict\(base_lr="):
        av.resolve_auto_values(cfg, world_size=1, dataset_size=400)


def test_missing_data_names_the_key_and_the_folder(tmp_path):
    cfg = Config.fromfile(DENSECL_CPU)
    cfg.train_dataloader.dataset.data_root = str(tmp_path / 'nowhere')
    with pytest.raises(ValueError) as err:
        av.resolve_auto_values(cfg, world_size=1)
    text = str(err.value)
    assert "model.queue_len and DenseCLHook.start_iters='auto' needs the " \
        'data set size' in text and 'nowhere' in text


def test_linear_rule_goes_through_mmengine_auto_scale_lr(tmp_path):
    """rule='linear': the lr stays base_lr with enable=True, and MMEngine's
    Runner scales it to the value the table shows."""
    from mmengine.runner import Runner
    cfg = Config.fromfile(MOCOV2_CPU)
    cfg.train_dataloader.dataset.data_root = _images(str(tmp_path / 'i'), 20)
    cfg.train_dataloader.batch_size = 4
    cfg.model.backbone.base_channels = 8
    cfg.model.neck.update(in_channels=64, hid_channels=16)
    cfg.auto_scale_lr.update(rule='linear', base_batch_size=16, base_lr=0.02)
    cfg.work_dir = str(tmp_path / 'w')
    rows = _rows(av.resolve_auto_values(cfg))
    assert cfg.optim_wrapper.optimizer.lr == 0.02
    assert cfg.auto_scale_lr.enable is True
    runner = Runner.from_cfg(cfg)
    wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    runner.scale_lr(wrapper, runner.auto_scale_lr)  # what train() does
    lr = wrapper.optimizer.param_groups[0]['lr']
    assert lr == pytest.approx(0.02 * 4 / 16)
    assert rows['optim_wrapper.optimizer.lr']['value'] == pytest.approx(lr)


def test_inference_model_takes_the_checkpoint_queue(tmp_path):
    model = dict(queue_len='auto', split_bn_groups='auto')
    av.resolve_inference_model(model)
    assert model == dict(queue_len=av.INFERENCE_QUEUE, split_bn_groups=1)
    path = str(tmp_path / 'c.pth')
    torch.save(dict(state_dict=dict(queue=torch.zeros(8, 48))), path)
    model = dict(queue_len='auto')
    assert av.resolve_inference_model(model, path)['queue_len'] == 48
    model = dict(queue_len=7)
    assert av.resolve_inference_model(model, path)['queue_len'] == 7


# the docs' table ---------------------------------------------------------------
SIZES = (50, 400, 5000, 100000, 1281167)
#: the sanity hook's warnings, by how they start, and the table's words
HOOK_LABELS = (('the data set has', 'data set < total batch'),
               ('the queue', 'queue'), ('one process', 'split BN'),
               ('the dense grid', 'grid'), ('warm-up', 'warm-up'),
               ('optim_wrapper.optimizer.lr', 'lr'))
WORLDS = (1, 8, 64)


def table_row(n, world):
    """One row of docs/auto_values.md's table, recomputed from the resolver
    on the shipped DenseCL CPU config and checked by the sanity hook."""
    from densecl_plugin.engine.hooks import PretrainingSanityHook
    from densecl_plugin.engine.hooks.pretraining_sanity_hook import RunFacts
    cfg = Config.fromfile(DENSECL_CPU)
    rows = _rows(av.resolve_auto_values(cfg, world_size=world,
                                        dataset_size=n))
    K = rows['model.queue_len']
    facts = RunFacts(
        name='DenseCL', n=n, batch=cfg.train_dataloader.batch_size,
        world=world, K=K['value'], groups=cfg.model.split_bn_groups,
        dense=True, loss_lambda=cfg.model.loss_lambda, size=80,
        grid=av.dense_grid(80, cfg.model.backbone), has_warmup=True,
        max_iters=cfg.train_cfg.max_iters,
        lr=rows['optim_wrapper.optimizer.lr']['value'])
    msgs = PretrainingSanityHook().check(facts)
    hook = '; '.join(next(label for start, label in HOOK_LABELS
                          if start in m) for m in msgs) or 'none'
    return (f"| {n:,} | {world} | {rows['total batch']['value']} | "
            f"{K['value']} ({100 * K['own_key_share']:.1f}%) | "
            f"{rows['model.split_bn_groups']['value']} | "
            f"{rows['optim_wrapper.optimizer.lr']['value']:.4g} | "
            f"{rows['DenseCLHook.start_iters']['value']} | {hook} |")


def test_docs_table_is_what_the_resolver_gives():
    text = open(DOC).read()
    want = [table_row(n, w) for n in SIZES for w in WORLDS]
    got = [line for line in text.splitlines()
           if re.match(r'\| [\d,]+ \| \d+ \|', line)]
    assert got == want, '\n'.join(want)


def test_a_dumped_resolved_config_builds_its_hook_in_a_fresh_process(
        tmp_path):
    """The hook that a resolved config names is found through the
    registry alone (as when the dumped config of a run is built again)."""
    cfg = Config.fromfile(COCO)
    av.resolve_auto_values(cfg, world_size=8)
    entry = [h for h in cfg.custom_hooks if h.type == av.HOOK_TYPE][0]
    code = ('from mmengine.registry import HOOKS, DefaultScope\n'
            'import densecl_plugin.registry\n'
            'with DefaultScope.overwrite_default_scope("densecl_plugin"):\n'
            f'    hook = HOOKS.build({entry.to_dict()!r})\n'
            'print(type(hook).__name__, len(hook.rows))\n')
    out = subprocess.run([sys.executable, '-c', code], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ['ResolvedValuesHook', str(len(entry.rows))]


# a real run --------------------------------------------------------------------
def test_tools_train_logs_and_saves_the_resolved_values(tmp_path):
    """``python tools/train.py`` on the shipped DenseCL CPU config (50
    images, batch 4, 2 iterations): the table is in the run's log, the file
    in the work dir, the runner uses those values and the sanity hook has
    nothing to suggest."""
    images = _images(str(tmp_path / 'img'), 50)
    work = str(tmp_path / 'work')
    cmd = [sys.executable, osp.join(ROOT, 'tools/train.py'), DENSECL_CPU,
           '--work-dir', work, '--cfg-options',
           f'train_dataloader.dataset.data_root={images}',
           'train_dataloader.batch_size=4', 'train_cfg.max_iters=2',
           'default_hooks.logger.interval=1']
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run(cmd, cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = json.load(open(osp.join(work, av.RESOLVED_FILE)))
    rows = _rows(saved['rows'])
    assert rows['data set size']['value'] == 50
    assert rows['model.queue_len'] == dict(
        key='model.queue_len', value=av.auto_queue_len(50, 4), source='auto',
        rule=rows['model.queue_len']['rule'],
        own_key_share=round(av.own_key_share(av.auto_queue_len(50, 4), 50),
                            4))
    assert rows['optim_wrapper.optimizer.lr']['value'] == pytest.approx(
        0.03 * math.sqrt(4 / 256))
    assert rows['DenseCLHook.start_iters']['value'] == 1  # 2 // 10 -> 1
    logs = [osp.join(d, f) for d, _, fs in os.walk(work) for f in fs
            if f.endswith('.log')]
    log = ''.join(open(p).read() for p in logs)
    assert saved['table'] in log
    assert 'PretrainingSanityHook: ' not in log  # no warning
    dumped = Config.fromfile(osp.join(
        work, osp.basename(DENSECL_CPU)))  # the config the runner used
    assert dumped.model.queue_len == av.auto_queue_len(50, 4)
    assert dumped.model.split_bn_groups == 2
