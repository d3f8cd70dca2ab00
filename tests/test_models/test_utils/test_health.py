# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Health metrics: each against plain loops on random inputs, analytic
values, and the models' logging of them (interval, names, no effect on the
loss)."""
import math

import pytest
import torch

from densecl_plugin.models.utils import health


def _unit(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    return (x / x.norm(dim=1, keepdim=True)).float()


def _dot(a, b):
    return sum(float(a[i]) * float(b[i]) for i in range(len(a)))


def test_metrics_against_loops():
    N, D, K = 7, 5, 9
    q, k = _unit(N, D, 0), _unit(N, D, 1)
    queue = _unit(K, D, 2).t().contiguous()  # DxK
    pos = sum(_dot(q[i], k[i]) for i in range(N)) / N
    neg = sum(_dot(q[i], queue[:, j]) for i in range(N)
              for j in range(4)) / (N * 4)
    stds = []
    for d in range(D):
        col = [float(q[i, d]) for i in range(N)]
        mu = sum(col) / N
        stds.append(math.sqrt(sum((c - mu) ** 2 for c in col) / (N - 1)))
    std = sum(stds) / D * math.sqrt(D)
    align = sum(sum((float(q[i, d]) - float(k[i, d])) ** 2
                    for d in range(D)) for i in range(N)) / N

    def unif(x):
        vals = [math.exp(-2 * sum((float(x[i, d]) - float(x[j, d])) ** 2
                                  for d in range(D)))
                for i in range(N) for j in range(i + 1, N)]
        return math.log(sum(vals) / len(vals))

    out = health.health_metrics(q, k, queue, num_real=4)
    assert float(out['health_pos_cos']) == pytest.approx(pos, abs=1e-5)
    assert float(out['health_neg_cos']) == pytest.approx(neg, abs=1e-5)
    assert float(out['health_emb_std']) == pytest.approx(std, abs=1e-5)
    assert float(out['health_align']) == pytest.approx(align, abs=1e-5)
    assert float(out['health_uniform']) == pytest.approx(
        (unif(q) + unif(k)) / 2, abs=1e-5)
    assert float(out['health_queue_fill']) == pytest.approx(4 / K)
    assert not any('loss' in key for key in out)
    # an empty queue has no negatives to report; a full one uses all K
    assert 'health_neg_cos' not in health.health_metrics(q, k, queue, 0)
    full = health.health_metrics(q, k, queue, 100)
    assert float(full['health_queue_fill']) == 1.0
    torch.testing.assert_close(full['health_neg_cos'],
                               (q @ queue).mean(), rtol=1e-5, atol=1e-6)


def test_analytic_values():
    z = _unit(1, 16, 3).repeat(8, 1)  # 8 identical embeddings
    assert float(health.embedding_std(z)) == pytest.approx(0, abs=1e-6)
    assert float(health.uniformity(z)) == pytest.approx(0, abs=1e-6)
    assert float(health.alignment(z, z)) == pytest.approx(0, abs=1e-6)
    assert float(health.positive_cosine(z, z)) == pytest.approx(1, abs=1e-6)
    assert float(health.positive_cosine(z, -z)) == pytest.approx(-1)
    # many samples spread uniformly on the sphere: std x sqrt(D) -> 1,
    # uniformity -> log E exp(-2 * 2(1 - cos)) ~ -4 in high dimension
    u = _unit(4096, 64, 4)
    assert float(health.embedding_std(u)) == pytest.approx(1, abs=0.02)
    assert float(health.negative_cosine(u[:64], u.t())) == pytest.approx(
        0, abs=0.05)


def _train_logs(algo, steps, **kwargs):
    from mmengine.optim import OptimWrapper

    from tiny_models import build_tiny_model
    torch.manual_seed(0)
    model = build_tiny_model(algo, depth=18, base_channels=8,
                             hid_channels=16, feat_dim=8, queue_len=12,
                             **kwargs)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    logs = []
    for it in range(steps):  # no HealthHook: the model counts its steps
        torch.manual_seed(10 + it)
        ims = [torch.randn(4, 3, 32, 32) for _ in range(2)]
        logs.append({k: float(v) for k, v in
                     model.train_step(dict(inputs=ims), optim).items()})
    return logs


@pytest.mark.parametrize('algo', ['MoCoV2', 'DenseCL'])
def test_logged_on_the_interval_without_changing_the_step(algo):
    on = _train_logs(algo, 4, health_interval=2)
    off = _train_logs(algo, 4, health_interval=0)
    names = {'health_pos_cos', 'health_neg_cos', 'health_emb_std',
             'health_align', 'health_uniform', 'health_queue_fill'}
    if algo == 'DenseCL':
        names |= {'health_single_infonce', 'health_dense_infonce'}
    for it, (a, b) in enumerate(zip(on, off)):
        assert not any(k.startswith('health') for k in b)
        extra = set(a) - set(b)
        # iterations 1 and 3 ((it + 1) % 2 == 0); the queue is empty
        # before the first enqueue, so iteration 0 would have no neg_cos
        assert extra == (names if it % 2 else set()), it
        for key in b:  # the same losses (the metrics touch nothing)
            assert a[key] == b[key], (it, key)
    # queue of 12, batch of 4: 4 then 12 real keys before steps 1 and 3
    assert on[1]['health_queue_fill'] == pytest.approx(4 / 12)
    assert on[3]['health_queue_fill'] == pytest.approx(1.0)
    if algo == 'DenseCL':  # lambda 0.5: the weighted loss is half of it
        assert on[1]['loss_dense'] == pytest.approx(
            0.5 * on[1]['health_dense_infonce'], rel=1e-5)


def test_health_interval_validation():
    from densecl_plugin.registry import MODELS
    from tiny_models import tiny_model_cfg
    for bad in (-1, 1.5, True, '10'):
        with pytest.raises(ValueError, match='health_interval'):
            MODELS.build(tiny_model_cfg('MoCoV2', health_interval=bad))


def test_own_in_queue_share_against_loop():
    g = torch.Generator().manual_seed(3)
    idx = torch.randint(0, 10, (9, ), generator=g)
    queue_idx = torch.randint(-1, 10, (7, ), generator=g)
    ref = sum(any(int(i) == int(j) for j in queue_idx if j >= 0)
              for i in idx) / len(idx)
    assert float(health.own_in_queue_share(idx, queue_idx)) == pytest.approx(ref)
    assert float(health.own_in_queue_share(idx, torch.full((7, ), -1))) == 0.0


def test_own_in_queue_from_sample_idx():
    """Images 0..3 then 4..7 then 0..3 again (queue of 12): before the
    third step the queue holds keys of images 0..7, so every query of step
    3 has an older key of its own image; step 2's queries have none."""
    from mmengine.optim import OptimWrapper

    from densecl_plugin.datasets.self_sup_data_sample import SelfSupDataSample
    from tiny_models import build_tiny_model
    torch.manual_seed(0)
    model = build_tiny_model('MoCoV2', depth=18, base_channels=8,
                             hid_channels=16, feat_dim=8, queue_len=12,
                             health_interval=1)
    assert 'queue_idx' not in model.state_dict()  # layout unchanged
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    logs = []
    for it, first in enumerate((0, 4, 0)):
        samples = [SelfSupDataSample(metainfo=dict(sample_idx=first + i))
                   for i in range(4)]
        ims = [torch.randn(4, 3, 32, 32) for _ in range(2)]
        logs.append(model.train_step(
            dict(inputs=ims, data_samples=samples), optim))
    assert float(logs[0]['health_own_in_queue']) == 0.0
    assert float(logs[1]['health_own_in_queue']) == 0.0
    assert float(logs[2]['health_own_in_queue']) == 1.0
    assert model.queue_idx[0, :8].tolist() == list(range(8))
