# Copyright (c) densecl_plugin contributors. All rights reserved.
"""tools/analysis/benchmark_step.py --options: each speed option alone and
all together, DenseCL and MoCo v2 interleaved (the plain DenseCL-vs-MoCo-v2
path is tested in tests/test_engine/test_step_benchmark.py)."""
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location(
        'benchmark_step_tool', osp.join(ROOT, 'tools/analysis/'
                                        'benchmark_step.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_option_variants(tool):
    assert tool.option_variants(['amp']) == {'plain': {'amp': False},
                                             'amp': {'amp': True}}
    v = tool.option_variants(['amp', 'channels_last'])
    assert list(v) == ['plain', 'amp', 'channels_last', 'amp+channels_last']
    assert v['channels_last'] == {'amp': False, 'channels_last': True}
    for bad in (['fast'], ['amp', 'amp']):
        with pytest.raises(ValueError, match='distinct names'):
            tool.option_variants(bad)


def test_precision_step_autocasts_and_steps(tool):
    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 2)
            self.dtypes = []

        def forward(self, views, mode):
            y = self.fc(views[0])
            self.dtypes.append(y.dtype)
            return dict(loss=y.float().square().mean())

    model = Tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = model.fc.weight.detach().clone()
    loss = tool.precision_step(model, opt, [torch.randn(3, 4)],
                               torch.bfloat16)
    assert model.dtypes == [torch.bfloat16] and loss > 0
    assert not torch.equal(model.fc.weight, before)
    tool.precision_step(model, opt, [torch.randn(3, 4)])
    assert model.dtypes[-1] == torch.float32


def test_bad_combinations_are_named(tool):
    with pytest.raises(ValueError, match='fp16.*GPU'):
        tool.benchmark_options(options=['amp'], amp_dtype='fp16')
    with pytest.raises(ValueError, match='warmup'):
        tool.benchmark_options(options=['compile'], warmup=0)
    with pytest.raises(ValueError, match='amp_dtype'):
        tool.benchmark_options(amp_dtype='int8')


def test_cli_options_run(tool, tmp_path, capsys):
    path = str(tmp_path / 'opts.json')
    res = tool.main(['--depth', '18', '--batch', '2', '--size', '64',
                     '--queue-len', '32', '--iters', '1', '--warmup', '1',
                     '--options', 'channels_last', '--no-peak',
                     '--json', path])
    variants = res['variants']
    assert list(variants) == ['plain', 'channels_last']
    for name, r in variants.items():
        for algo in ('DenseCL', 'MoCoV2'):
            assert len(r[algo]['times']) == 1
            assert r[algo]['images_per_s'] == pytest.approx(
                2 / r[algo]['median'])
            assert r[algo]['best'] == min(r[algo]['times'])
            assert r[algo]['peak'] is None  # --no-peak
        assert r['time_ratio'] == pytest.approx(
            r['DenseCL']['median'] / r['MoCoV2']['median'])
        assert 0 < res['dense_loss']['share'][name]
    assert variants['plain']['speedup'] == {'DenseCL': 1., 'MoCoV2': 1.}
    assert variants['plain']['speedup_best'] == {'DenseCL': 1.,
                                                 'MoCoV2': 1.}
    assert res['config']['options'] == ['channels_last']
    with open(path) as f:
        assert json.load(f)['config']['amp_dtype'] == 'bf16'
    out = capsys.readouterr().out
    assert '| channels_last |' in out and 'dense loss share' in out


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
