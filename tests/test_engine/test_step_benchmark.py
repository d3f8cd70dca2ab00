# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The step benchmark: its memory probe, the dense-loss claim, the CLI."""
import importlib.util
import json
import os.path as osp

import pytest
import torch

from densecl_plugin.engine.step_benchmark import (benchmark_dense_loss,
                                                  grid_cells, peak_memory)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
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


def test_cli_runs_and_writes_json(tmp_path):
    spec = importlib.util.spec_from_file_location(
        'benchmark_step', osp.join(ROOT, 'tools', 'analysis',
                                   'benchmark_step.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    path = str(tmp_path / 'bench.json')
    res = tool.main(['--depth', '18', '--batch', '2', '--size', '64',
                     '--queue-len', '32', '--iters', '1', '--warmup', '0',
                     '--json', path])
    steps = res['steps']
    assert len(steps['DenseCL']['times']) == len(steps['MoCoV2']['times']) == 1
    assert steps['time_ratio'] > 0
    assert res['dense_loss']['config']['M'] == 2 * grid_cells(64) == 8
    with open(path) as f:
        assert json.load(f)['steps']['config']['depth'] == 18
