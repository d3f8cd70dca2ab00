# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The peer comparison (``benchmark_step.py --peer``), the step profiler
(``profile_step.py``) and the memory-only path, on tiny models: the
structure of their results, no timings."""
import os.path as osp

import pytest

from densecl_lab.benchmarks import (benchmark_memory, benchmark_peer,
                                    format_memory_report, format_peer_report,
                                    format_profile, profile_models)

TESTS = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
STANDIN = osp.join(TESTS, 'peers', 'standin')
TINY = dict(depth=18, batch=2, size=32, queue_len=16)


def test_peer_comparison_structure():
    res = benchmark_peer(**TINY, iters=2, warmup=0, standin=STANDIN,
                         log=lambda *a: None)
    names = ['DenseCL', 'mmpretrain DenseCL', 'MoCoV2', 'mmpretrain MoCo']
    assert list(res['models']) == names
    for r in res['models'].values():
        assert len(r['times']) == 2
        assert r['fastest'] <= r['median']
        assert 0 < r['loss'] < 20
    assert set(res['ratios']) == {'DenseCL', 'MoCoV2', 'ours', 'mmpretrain'}
    for r in res['ratios'].values():
        assert set(r) == {'fastest', 'median', 'pairs'}
        assert all(v > 0 for v in r.values())
    text = format_peer_report(res)
    assert 'our DenseCL / mmpretrain DenseCL' in text


def test_peer_build_is_strict_and_same_losses():
    """The peer starts from our state: its first loss equals ours."""
    import torch

    from densecl_lab.benchmarks import build_models, build_peer
    ours = build_models(depth=18, queue_len=16)['DenseCL']
    peer = build_peer(ours, 18, STANDIN)
    views = [torch.randn(2, 3, 64, 64) for _ in range(2)]
    torch.manual_seed(0)
    lo = ours(views, mode='loss')
    torch.manual_seed(0)
    lp = peer(views, None, mode='loss')
    for key in ('loss_single', 'loss_dense'):
        torch.testing.assert_close(lo[key], lp[key], rtol=1e-5, atol=1e-5)


def test_missing_mmpretrain_names_the_install(monkeypatch):
    import builtins
    import sys

    from densecl_lab.benchmarks import peer
    real = builtins.__import__

    def fake(name, *args, **kwargs):
        if name.split('.')[0] == 'mmpretrain':
            raise ImportError(f'No module named {name!r}')
        return real(name, *args, **kwargs)

    for mod in [m for m in sys.modules if m.split('.')[0] == 'mmpretrain']:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setattr(builtins, '__import__', fake)
    monkeypatch.setattr(peer.importlib, 'import_module',
                        lambda name: fake(name))
    with pytest.raises(ImportError, match=r'pip install mmpretrain==1\.2\.0'):
        peer.import_mmpretrain(STANDIN)


def test_profile_structure():
    res = profile_models(**TINY, steps=1, warmup=0, log=lambda *a: None)
    for name in ('DenseCL', 'MoCoV2'):
        r = res[name]
        assert r['collectives'] == 0  # one process: no all-gather
        regions = r['regions']
        for key in ('forward/query_backbone', 'forward/query_backbone [bwd]',
                    'forward/key_forward/key_backbone',
                    'forward/single_infonce', 'forward/enqueue',
                    'optimizer_step'):
            assert key in regions, (name, key)
        # the regions partition the step
        assert sum(regions.values()) == pytest.approx(r['step_ms'], rel=1e-3)
    dc = res['DenseCL']['regions']
    for key in ('forward/matching', 'forward/gather', 'forward/dense_infonce',
                'forward/query_neck/neck.dense',
                'forward/query_neck/neck.dense [bwd]',
                'forward/key_forward/key_neck/neck.dense'):
        assert key in dc, key
    assert 'forward/dense_infonce' not in res['MoCoV2']['regions']
    text = format_profile(res)
    assert 'forward/dense_infonce' in text and 'collective ops' in text


@pytest.mark.parametrize('algo', ['DenseCL', 'MoCoV2'])
def test_model_regions_come_and_go_without_changing_the_step(algo):
    """The profiler's regions wrap the step's calls only inside the block:
    the same losses and gradients with them, and afterwards the model (and
    the base module's shuffle functions) as before, nothing left behind."""
    import copy

    import torch

    from densecl_lab.benchmarks import build_models
    from densecl_lab.benchmarks.step_profile import model_regions
    from densecl_plugin.models.algorithms import base
    model = build_models(depth=18, queue_len=16)[algo]
    twin = copy.deepcopy(model)
    shuffle = base.batch_shuffle_ddp
    before = {id(m): dict(vars(m)) for m in model.modules()}
    views = [torch.randn(2, 3, 64, 64) for _ in range(2)]

    def step(m):
        torch.manual_seed(0)
        losses = m(views, mode='loss')
        loss = sum(v for k, v in losses.items() if 'loss' in k)
        return loss, torch.autograd.grad(loss, m.backbone.conv1.weight)[0]

    with model_regions(model):
        assert model.backbone.forward is not type(model.backbone).forward
        assert base.batch_shuffle_ddp is not shuffle
        loss, grad = step(model)
    ref_loss, ref_grad = step(twin)
    assert torch.equal(loss, ref_loss) and torch.equal(grad, ref_grad)
    assert base.batch_shuffle_ddp is shuffle
    assert {id(m): set(vars(m)) for m in model.modules()} == {
        k: set(v) for k, v in before.items()}


def test_memory_only_structure(monkeypatch):
    """The memory-only path (the profiler's peak itself is tested in
    test_step.py; a stub stands in for it here, to keep this fast)."""
    from densecl_lab.benchmarks import step
    calls = []

    def fake_peak(fn, device):
        fn()  # the measured step still runs
        calls.append(device)
        return 1000 * (len(calls) + 1)

    monkeypatch.setattr(step, 'peak_memory', fake_peak)
    res = benchmark_memory(**TINY, warmup=0, log=lambda *a: None)
    assert len(calls) == 2
    dc, mc = res['DenseCL'], res['MoCoV2']
    assert dc['state'] > mc['state'] > 0  # queue2 and the dense MLP
    assert (dc['transient'], mc['transient']) == (2000, 3000)
    assert dc['peak'] == dc['state'] + 2000
    assert res['peak_ratio'] == pytest.approx(dc['peak'] / mc['peak'])
    assert res['transient_ratio'] == pytest.approx(2000 / 3000)
    assert 'DenseCL / MoCo v2: peak' in format_memory_report(res)
