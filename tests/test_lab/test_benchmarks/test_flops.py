# Copyright (c) densecl_plugin contributors. All rights reserved.
"""FLOPs of a step (what ``tools/analysis/flops.py`` runs): counted FLOPs
against formulas written here, parts that add up to the whole step, and the
run-time arithmetic."""
import json

import pytest

from densecl_lab.benchmarks import (GPU_PEAK_TFLOPS, IMAGENET_TRAIN,
                                    implied_efficiency, run_flops_estimate,
                                    run_time, step_costs)

# a small but complete configuration: ResNet-18, 64 px (C5 2x2)
N, SIZE, K, D = 4, 64, 512, 16


@pytest.fixture(scope='module')
def costs():
    return {a: step_costs(a, depth=18, batch=N, size=SIZE, queue_len=K,
                               feat_dim=D) for a in ('DenseCL', 'MoCoV2')}


def test_parts_add_up_to_the_whole_step(costs):
    for c in costs.values():
        parts = sum(v for k, v in c['flops'].items() if k != 'total')
        assert parts == c['flops']['total'] > 0


def test_necks_and_losses_match_formulas(costs):
    c = costs['DenseCL']
    C, S = c['C'], c['S']
    assert (C, S) == (512, SIZE // 32)
    M = N * S * S
    # 1x1 convs C->C->D on every cell; linear C->C->D on pooled vectors
    assert c['flops']['neck_dense_fwd'] == 2 * M * (C * C + C * D)
    assert c['flops']['neck_global_fwd'] == 2 * N * (C * C + C * D)
    # backward: weight and input gradients, each a forward's worth
    assert c['flops']['neck_dense_bwd'] == 2 * c['flops']['neck_dense_fwd']
    # q @ queue, then the gradient (softmax @ queue^T): 2 products of MxDxK
    assert c['flops']['logits_dense'] == 2 * 2 * M * D * K
    assert c['flops']['logits_single'] == 2 * 2 * N * D * K
    assert c['flops']['matching'] == 2 * N * S**2 * S**2 * C
    # the key encoder is the query backbone plus the neck, forward only
    assert c['flops']['key_fwd'] == (c['flops']['backbone_q_fwd'] +
                                     c['flops']['neck_dense_fwd'] +
                                     c['flops']['neck_global_fwd'])


def test_backbone_forward_matches_resnet18_formula(costs):
    """Convolutions of a ResNet-18 on 64 px, layer by layer (2 per MAC)."""
    def conv(cin, cout, k, out_hw):
        return 2 * cin * cout * k * k * out_hw**2

    fwd = conv(3, 64, 7, 32)  # stem: 64 -> 32 px
    hw, cin = 16, 64  # after the max pool
    for stage, cout in enumerate((64, 128, 256, 512)):
        if stage:
            hw //= 2
        for block in range(2):
            c_in = cin if block == 0 else cout
            fwd += conv(c_in, cout, 3, hw) + conv(cout, cout, 3, hw)
            if block == 0 and c_in != cout:
                fwd += conv(c_in, cout, 1, hw)  # downsample
        cin = cout
    assert costs['MoCoV2']['flops']['backbone_q_fwd'] == N * fwd


def test_densecl_costs_more_than_mocov2_by_its_dense_parts(costs):
    dc, mc = costs['DenseCL']['flops'], costs['MoCoV2']['flops']
    extra = (dc['neck_dense_fwd'] * 2 + dc['neck_dense_bwd'] +
             dc['matching'] + dc['logits_dense'])
    assert dc['total'] - mc['total'] == extra


def test_bytes(costs):
    b = costs['DenseCL']['bytes']
    assert b['params_trained'] == b['params_key_encoder'] == b['grads']
    assert b['queues'] == 2 * D * K * 4 + K * 8  # queue, queue2 + queue_idx
    assert b['dense_logits_plain'] == N * costs['DenseCL']['S']**2 * (K +
                                                                     1) * 4
    assert b['saved_activations'] > 0
    # the frugal loss's largest buffer: a chunk of logits, at most all rows
    M = N * costs['DenseCL']['S']**2
    assert K * 4 <= b['dense_logits_frugal_chunk'] <= M * K * 4
    assert costs['MoCoV2']['bytes']['queues'] == D * K * 4 + K * 8


def test_run_time_and_implied_efficiency_are_inverse():
    t = run_time(1e12, batch_per_gpu=32, gpus=8, epochs=2,
                      images=2560, peak_tflops=100., efficiency=0.5)
    assert t['steps'] == 2 * 10
    assert t['hours'] == pytest.approx(20 * 1e12 / 50e12 / 3600)
    assert t['images_per_s_per_gpu'] == pytest.approx(32 / 0.02)
    eff = implied_efficiency(1e12, 32, 8, 2, 2560, 100., t['days'])
    assert eff == pytest.approx(0.5)
    with pytest.raises(ValueError, match='efficiency'):
        run_time(1e12, 32, 8, 1, 256, 100., 0.)


def test_run_flops_estimate(tmp_path, capsys):
    out = str(tmp_path / 'flops.json')
    res = run_flops_estimate(depth=18, batch=N, size=SIZE, queue_len=K,
                             feat_dim=D, gpu=['A100'], efficiency=[0.3],
                             pipeline_rate=100, json_path=out)
    with open(out) as f:
        assert json.load(f)['estimates'][0]['gpu'] == 'A100'
    e = res['estimates'][0]
    assert e['dtype'] == 'bf16' and e['efficiency'] == 0.3
    assert e['cores_per_gpu'] == pytest.approx(e['images_per_s_per_gpu'] /
                                               100)
    assert res['implied_v100_efficiency'] is None  # not the paper's setup
    assert 'DenseCL / MoCo v2 step FLOPs' in capsys.readouterr().out
    with pytest.raises(ValueError, match='no bf16 peak listed for V100'):
        run_flops_estimate(depth=18, batch=2, size=64, queue_len=64,
                           gpu=['V100'], dtype='bf16', efficiency=[0.3])


def test_implied_efficiency_of_the_authors_run():
    """At the paper's settings the 2.3 days on 8 V100s mean 30-45 % of the
    fp32 peak: plausible for fp32 ResNet-50 training, so the FLOP count is
    in the right range."""
    step = step_costs('DenseCL')['flops']['total']
    assert 1.0e12 < step < 1.3e12  # ~36 GFLOP per image and step
    eff = implied_efficiency(step, 32, 8, 200, IMAGENET_TRAIN,
                             GPU_PEAK_TFLOPS['V100']['fp32'], 2.3)
    assert 0.30 < eff < 0.45
