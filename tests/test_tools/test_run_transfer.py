# Copyright (c) densecl_plugin contributors. All rights reserved.
"""``tools/benchmarks/run_transfer.py`` and its shell wrappers: commands,
the checkpoint check before anything runs, metric collection and the table,
and one real run through ``tools/train.py`` in a subprocess. The script's
logic is :func:`densecl_plugin.downstream.transfer.run_transfer_cli`."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from densecl_plugin.downstream.transfer import (BENCHMARKS, Benchmark,
                                                benchmark_list, run_transfer,
                                                run_transfer_cli,
                                                train_command)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
RUN_TRANSFER = osp.join(ROOT, 'tools', 'benchmarks', 'run_transfer.py')


def run_script(*args, cwd=ROOT):
    """``tools/benchmarks/run_transfer.py ARGS`` in a subprocess."""
    return subprocess.run([sys.executable, RUN_TRANSFER, *args], cwd=cwd,
                          env=dict(os.environ, PYTHONPATH=''),
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def backbone_ckpt(tmp_path):
    from mmdet.models.backbones import ResNet
    path = str(tmp_path / 'densecl_r50_backbone.pth')
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in
                               ResNet(50).state_dict().items()}}, path)
    return path


def test_every_benchmark_config_exists():
    for b in BENCHMARKS.values():
        assert osp.isfile(osp.join(ROOT, b.config)), b.config
        assert f'{b.gpus}xb' in b.config  # the protocol's GPU count


@pytest.mark.parametrize('launcher', ['none', 'pytorch', 'slurm'])
def test_train_command(launcher):
    bench = BENCHMARKS['voc12aug-20k']
    argv, env = train_command(bench, '/ck/p.pth', 'wd', None, launcher,
                              partition='gpu')
    assert argv[-2:] == ['--cfg-options',
                         'model.init_cfg.checkpoint=/ck/p.pth']
    assert osp.join(ROOT, bench.config) in argv
    if launcher == 'none':
        assert argv[1].endswith('tools/train.py') and env == {}
    elif launcher == 'pytorch':
        assert argv[1].endswith('tools/dist_train.sh') and argv[3] == '4'
    else:
        assert argv[1].endswith('tools/slurm_train.sh')
        assert argv[2:4] == ['gpu', 'voc12aug-20k_p'] and env == {'GPUS': '4'}
    with pytest.raises(ValueError, match='partition'):
        train_command(bench, 'p', 'wd', launcher='slurm')


def _check_cluster_commands(lines):
    assert len(lines) == len(BENCHMARKS)
    assert all('tools/dist_train.sh' in ln and ln.endswith(
        'model.init_cfg.checkpoint=s3://bucket/densecl_200ep.pth --amp')
        for ln in lines)
    assert 'work_dirs/transfer/densecl_200ep/coco-c4-2x' in lines[2]


def test_print_only_for_a_cluster(capsys):
    assert run_transfer_cli('s3://bucket/densecl_200ep.pth', ['all'],
                            print_only=True, extra_args=['--amp']) == 0
    _check_cluster_commands(capsys.readouterr().out.strip().splitlines())


def test_script_print_only_and_usage(tmp_path):
    """The real script: ``--`` passes the rest on to tools/train.py."""
    proc = run_script('s3://bucket/densecl_200ep.pth', '--benchmarks', 'all',
                      '--print-only', '--', '--amp')
    assert proc.returncode == 0, proc.stderr[-2000:]
    _check_cluster_commands(proc.stdout.strip().splitlines())
    proc = run_script('ck.pth', cwd=str(tmp_path))
    assert proc.returncode == 2
    assert 'give --benchmarks and/or --configs' in proc.stderr


@pytest.mark.parametrize('bad', ['missing', 'no_backbone'])
def test_bad_checkpoint_stops_before_any_run(bad, tmp_path, capsys):
    ckpt = str(tmp_path / 'ck.pth')
    if bad == 'no_backbone':
        torch.save({'state_dict': {'neck.mlp.0.weight': torch.zeros(2)}},
                   ckpt)
    calls = []
    with pytest.raises((FileNotFoundError, ValueError)):
        run_transfer(ckpt, [BENCHMARKS['voc12aug-20k']], str(tmp_path),
                     run=lambda *a, **k: calls.append(a))
    assert calls == []
    assert run_transfer_cli(ckpt, ['voc12aug-20k'],
                            work_root=str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and 'ck.pth' in err


def test_shell_wrappers_check_arguments_and_checkpoint(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable)
    cfg = 'configs/benchmarks/mmdetection/voc0712/faster-rcnn_r50-c4_' \
        '8xb2-24k_voc0712.py'
    missing = str(tmp_path / 'missing.pth')
    for fam, script, args in (
            ('mmdetection', 'dist_train.sh', [cfg, missing, '8']),
            ('mmsegmentation', 'slurm_train.sh', ['p', cfg, missing, '8']),
            ('mmsegmentation', 'dist_train.sh', None),
            ('mmdetection', 'slurm_train.sh', None)):
        path = osp.join(ROOT, 'tools/benchmarks', fam, script)
        out = subprocess.run(['bash', path, 'too', 'few'],
                             capture_output=True, text=True, env=env)
        assert out.returncode == 2 and 'usage:' in out.stderr
        if args:  # the python path: the checkpoint is checked first
            out = subprocess.run(['bash', path, *args], capture_output=True,
                                 text=True, env=env, cwd=ROOT)
            assert out.returncode == 2, out.stderr
            assert f"'{missing}' does not exist" in out.stderr


def test_exit_status_of_a_failed_run(tmp_path, backbone_ckpt):
    lines = []
    status = run_transfer_cli(
        backbone_ckpt, ['voc12aug-20k'], work_root=str(tmp_path),
        launcher='none', echo=lines.append,
        run=lambda argv, env: subprocess.CompletedProcess(argv, 3))
    assert status == 1
    assert '[voc12aug-20k] failed with exit code 3' in lines
    assert run_transfer_cli(backbone_ckpt, list_only=True,
                            echo=lines.append) == 0
    assert lines[-len(BENCHMARKS):] == benchmark_list()
    assert len(benchmark_list()) == len(BENCHMARKS)
    assert run_transfer_cli('ck.pth', ['voc0712']) == 2  # unknown name


def test_collect_and_table(tmp_path, backbone_ckpt):
    """A fake run writes what MMEngine writes; the table reads it."""
    def fake_run(argv, env):
        wd = argv[argv.index('--work-dir') + 1]
        os.makedirs(osp.join(wd, '20260101_000000', 'vis_data'))
        with open(osp.join(wd, '20260101_000000', 'vis_data',
                           'scalars.json'), 'w') as f:
            for rec in ({'loss': 1.0, 'step': 1},
                        {'pascal_voc/mAP': 0.30, 'pascal_voc/AP50': 0.6,
                         'step': 1},
                        {'pascal_voc/mAP': 0.5712, 'pascal_voc/AP50': 0.8,
                         'pascal_voc/AP75': 0.6, 'step': 2}):
                f.write(json.dumps(rec) + '\n')
        return subprocess.CompletedProcess(argv, 0)

    out = run_transfer(backbone_ckpt, [BENCHMARKS['voc0712-c4-24k'],
                                       BENCHMARKS['cityscapes-40k']],
                       str(tmp_path / 'runs'), launcher='none', run=fake_run,
                       echo=lambda s: None)
    assert out['voc0712-c4-24k']['metrics'] == {'AP': 57.12, 'AP50': 80.0,
                                                'AP75': 60.0}
    assert out['cityscapes-40k']['returncode'] == 0
    table = open(tmp_path / 'runs' / 'densecl_r50_backbone' /
                 'results.md').read()
    assert '| voc0712-c4-24k | AP | 57.12 | 58.7 (detectron2, mean of 5 ' \
        'trials) | 57 (detectron2, mean of 5 trials) |' in table
    assert '75.7? (mmseg fork)' in table  # unverified numbers are marked
    csv_text = open(tmp_path / 'runs' / 'densecl_r50_backbone' /
                    'results.csv').read()
    assert csv_text.splitlines()[0] == ('benchmark,metric,ours,DenseCL '
                                        '(published),MoCo v2 (published)')


@pytest.mark.slow
def test_real_run_through_tools_train(tmp_path, backbone_ckpt):
    """run_transfer -> tools/train.py (subprocess) -> MMEngine -> table, on
    the real VOC12-aug FCN config shrunk to 2 CPU iterations and a tiny
    VOC12 + aug layout built from real nuclei masks."""
    from densecl_lab.data_prep import build_voc12
    from test_downstream.smoke import make_smoke_config
    bench = BENCHMARKS['voc12aug-20k']
    layout = build_voc12(str(tmp_path / 'data'), out_size=64)
    cfg = make_smoke_config(osp.join(ROOT, bench.config), 'unset',
                            layout.data_root, 'unset', img_size=64,
                            crop_size=48)
    cfg.pop('work_dir')
    cfg_path = str(tmp_path / 'fcn_smoke_voc12aug.py')
    cfg.dump(cfg_path)
    smoke = Benchmark('voc12aug-smoke', cfg_path, 1, bench.metrics)
    out = run_transfer(backbone_ckpt, [smoke], str(tmp_path / 'runs'),
                       launcher='none', echo=lambda s: None)
    result = out['voc12aug-smoke']
    assert result['returncode'] == 0
    assert 0 <= result['metrics']['mIoU'] <= 100
    assert os.path.isfile(tmp_path / 'runs' / 'densecl_r50_backbone' /
                          'results.md')
