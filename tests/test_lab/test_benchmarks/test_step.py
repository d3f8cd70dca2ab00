# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The step benchmark: its memory probe, the dense-loss claim, the models
it compares, and what ``tools/analysis/benchmark_step.py`` runs."""
import json

import pytest
import torch

from densecl_lab.benchmarks import (benchmark_dense_loss, build_models,
                                    grid_cells, model_kwargs, peak_memory,
                                    run_step_benchmark)

CPU = torch.device('cpu')


def test_peak_memory_sees_a_known_allocation():
    nbytes = 64 * 2**20

    def work():
        x = torch.ones(nbytes // 4)  # 64 MiB, touched
        del x
        torch.ones(nbytes // 8)  # 32 MiB after it: the peak stays 64 MiB

    peak = peak_memory(work, CPU)
    if peak is None:
        pytest.skip('this torch has no profiler memory timeline')
    assert peak == nbytes  # the 64 MiB tensor, not 64 + 32 MiB


def test_frugal_dense_loss_needs_a_fraction_of_plain_memory():
    out = benchmark_dense_loss(M=256, K=32768, D=64, iters=1)
    assert out['max_abs_diff'] < 1e-5
    if out['plain']['peak'] is None:
        pytest.skip('this torch has no profiler memory timeline')
    # plain keeps logits, log-softmax and their gradient: 3 x 32 MiB
    assert out['plain']['peak'] > 80 * 2**20
    assert out['frugal']['peak'] < 0.5 * out['plain']['peak']


def test_models_share_backbone_weights_and_the_pretraining_choices():
    models = build_models(depth=18, queue_len=32, feat_dim=8)
    dc, mc = models['DenseCL'], models['MoCoV2']
    assert dc.training and mc.training
    for (k, a), b in zip(dc.backbone.state_dict().items(),
                         mc.backbone.state_dict().values()):
        assert torch.equal(a, b), k
    for k, v in dc.neck.mlp.state_dict().items():
        assert torch.equal(v, mc.neck.mlp.state_dict()[k]), k
    bb = model_kwargs('MoCoV2', depth=18)['backbone']
    assert bb['norm_eval'] is False and bb['zero_init_residual'] is False
    assert model_kwargs('DenseCL', depth=50)['neck']['in_channels'] == 2048
    with pytest.raises(ValueError, match='algo'):
        model_kwargs('SimCLR')


def test_runs_and_writes_json(tmp_path, capsys):
    path = str(tmp_path / 'bench.json')
    res = run_step_benchmark(depth=18, batch=2, size=64, queue_len=32,
                             iters=1, warmup=0, json_path=path)
    steps = res['steps']
    assert len(steps['DenseCL']['times']) == len(steps['MoCoV2']['times']) == 1
    assert steps['time_ratio'] > 0
    assert res['dense_loss']['config']['M'] == 2 * grid_cells(64) == 8
    with open(path) as f:
        assert json.load(f)['steps']['config']['depth'] == 18
    out = capsys.readouterr().out
    assert 'DenseCL / MoCo v2: time x' in out and 'images/s: DenseCL' in out


def test_skip_steps_benchmarks_only_the_dense_loss(capsys):
    res = run_step_benchmark(queue_len=64, iters=1, skip_steps=True,
                             dense_rows=16)
    assert res['steps'] is None
    assert res['dense_loss']['config'] == dict(M=16, K=64, D=128, iters=3,
                                               device='cpu')
    out = capsys.readouterr().out
    assert 'Dense loss alone' in out and 'images/s' not in out
