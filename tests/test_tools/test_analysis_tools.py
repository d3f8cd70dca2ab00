# Copyright (c) densecl_plugin contributors. All rights reserved.
"""``tools/analysis/*``: the real scripts in a subprocess (their logic is
:mod:`densecl_lab.benchmarks`, tested in ``tests/test_lab/test_benchmarks``)."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ANALYSIS = osp.join(ROOT, 'tools', 'analysis')


def run_tool(name, *args, cwd=None):
    """Run ``tools/analysis/<name>.py ARGS`` from ``cwd``."""
    env = dict(os.environ, PYTHONPATH='', OMP_WAIT_POLICY='PASSIVE')
    return subprocess.run([sys.executable, osp.join(ANALYSIS, f'{name}.py'),
                           *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.parametrize('name, flag', [
    ('benchmark_step', '--skip-steps'), ('flops', '--pipeline-rate'),
    ('benchmark_pipeline', '--baseline-rev')])
def test_help(name, flag, tmp_path):
    proc = run_tool(name, '--help', cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith(f'usage: {name}.py') and flag in proc.stdout


def test_benchmark_step_dense_loss_only(tmp_path):
    out = tmp_path / 'dense.json'
    proc = run_tool('benchmark_step', '--skip-steps', '--dense-rows', '8',
                    '--queue-len', '64', '--iters', '1', '--threads', '1',
                    '--json', str(out), cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'Dense loss alone (forward + backward), M=8 rows, K=64' in \
        proc.stdout
    res = json.loads(out.read_text())
    assert res['steps'] is None and res['dense_loss']['config']['M'] == 8


def test_flops_tiny(tmp_path):
    out = tmp_path / 'flops.json'
    proc = run_tool('flops', '--depth', '18', '--batch', '2', '--size', '64',
                    '--queue-len', '64', '--feat-dim', '16', '--gpu', 'A100',
                    '--efficiency', '0.3', '--json', str(out),
                    cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'DenseCL / MoCo v2 step FLOPs: x' in proc.stdout
    assert "authors' 2.3 days" not in proc.stdout  # not the paper's setup
    assert json.loads(out.read_text())['estimates'][0]['gpu'] == 'A100'


def test_benchmark_pipeline_tiny_and_bad_counts(real_image_dir, tmp_path):
    out = tmp_path / 'pipe.json'
    proc = run_tool('benchmark_pipeline', '--images', real_image_dir,
                    '--rounds', '1', '--out', str(out), cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert '| **images/s (1 core)** |' in proc.stdout
    res = json.loads(out.read_text())
    assert res['command'] == ('python tools/analysis/benchmark_pipeline.py '
                              f'--images {real_image_dir} --rounds 1 --out '
                              f'{out}')
    proc = run_tool('benchmark_pipeline', '--workers', '0',
                    cwd=str(tmp_path))
    assert proc.returncode == 2
    assert 'error: --workers must be >= 1, got [0]' in proc.stderr


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(),
                    reason='on a GPU the script runs the full benchmark')
def test_gpu_check_script_cpu_fallback(tmp_path):
    """tools/analysis/gpu_check.sh end to end on its CPU fallback path."""
    out = tmp_path / 'gpu_check'
    proc = subprocess.run(
        ['bash', osp.join(ROOT, 'tools/analysis/gpu_check.sh')],
        env=dict(os.environ, PY=sys.executable, OUT=str(out)),
        capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'No CUDA device: CPU fallback' in proc.stdout
    assert 'DenseCL / MoCo v2 step time' in proc.stdout
    with open(out / 'options_bf16.json') as f:
        res = json.load(f)
    assert list(res['variants']) == ['plain', 'amp', 'channels_last',
                                     'amp+channels_last']
    with open(out / 'fp32.json') as f:
        assert json.load(f)['steps']['config']['depth'] == 18
