# Copyright (c) densecl_plugin contributors. All rights reserved.
"""``benchmark_step.py --options``: each speed option alone and all
together, DenseCL and MoCo v2 interleaved (the plain DenseCL-vs-MoCo-v2 path
is tested in ``test_step.py``)."""
import json

import pytest
import torch

from densecl_lab.benchmarks import (benchmark_options, option_variants,
                                    precision_step, run_step_benchmark)


def test_option_variants():
    assert option_variants(['amp']) == {'plain': {'amp': False},
                                             'amp': {'amp': True}}
    v = option_variants(['amp', 'channels_last'])
    assert list(v) == ['plain', 'amp', 'channels_last', 'amp+channels_last']
    assert v['channels_last'] == {'amp': False, 'channels_last': True}
    for bad in (['fast'], ['amp', 'amp']):
        with pytest.raises(ValueError, match='distinct names'):
            option_variants(bad)


def test_precision_step_autocasts_and_steps():
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
    loss = precision_step(model, opt, [torch.randn(3, 4)],
                               torch.bfloat16)
    assert model.dtypes == [torch.bfloat16] and loss > 0
    assert not torch.equal(model.fc.weight, before)
    precision_step(model, opt, [torch.randn(3, 4)])
    assert model.dtypes[-1] == torch.float32


def test_bad_combinations_are_named():
    with pytest.raises(ValueError, match='fp16.*GPU'):
        benchmark_options(options=['amp'], amp_dtype='fp16')
    with pytest.raises(ValueError, match='warmup'):
        benchmark_options(options=['compile'], warmup=0)
    with pytest.raises(ValueError, match='amp_dtype'):
        benchmark_options(amp_dtype='int8')


def test_options_run(tmp_path, capsys):
    path = str(tmp_path / 'opts.json')
    res = run_step_benchmark(depth=18, batch=2, size=64, queue_len=32,
                             iters=1, warmup=1, options=['channels_last'],
                             peak=False, json_path=path)
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
