# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Whole training steps against mmpretrain 1.2.0, a peer no one here wrote.

Our ``DenseCL`` / ``MoCoV2`` (on ``mmdet.ResNet``) and mmpretrain's
``DenseCL`` / ``MoCo`` (on mmpretrain's own ``ResNet``) start from the same
state dict (loaded strictly: every key and shape matches) and take three SGD
steps on the same views with the same shuffle permutation. In fp32:

- every loss, and the gradient of every parameter, agree to 1e-5;
- after every step, the queues, their pointers, the key encoders' parameters
  and step counters, and the query weights agree to 1e-5.

Before each step the peer is reloaded from our state (after checking that
the two states agree): DenseCL's argmax matching turns a 1e-7 float drift
between two implementations into a different match at a near-tie, and
then into gradients that differ by 1e-3 although the losses agree to 1e-6
(seen at the third step). Each step is compared exactly; the SGD momentum
buffers stay each implementation's own.

Key-encoder *buffers* (BN running statistics) are not compared: mmpretrain's
EMA copies the query's buffers at every update, we keep the key encoder's own,
as the authors' code does; train-mode BN never reads them.

The same comparison runs under real 2-process gloo DDP, where shuffle BN
moves samples across ranks: there it also changes the loss (checked against
the same model without the shuffle). A last test shows what these tests
catch: with the backbone's BN frozen (mmdet's ``norm_eval=True``, the bug this
project once had), the losses are far apart.
"""
import os.path as osp
import socket
import sys

import pytest
import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))), 'peers'))
from mmpretrain_peer import build_peer, import_mmpretrain  # noqa: E402

DEPTH = 18
N, SIZE, K, D = 4, 96, 8, 16  # K = 2 * N: the queues wrap within 3 steps
STEPS = 3
TOL = dict(rtol=1e-5, atol=1e-5)


def build_ours(algo: str, norm_eval: bool = False, seed: int = 0):
    from tiny_models import build_tiny_model
    torch.manual_seed(seed)
    model = build_tiny_model(
        algo, depth=DEPTH, base_channels=64, hid_channels=64, feat_dim=D,
        queue_len=K, backbone=dict(norm_eval=norm_eval),
        head=dict(type='ContrastiveHead', temperature=0.2), momentum=0.9,
        allow_frozen_bn=norm_eval)
    # the first step copies the query into the key encoder in both
    # implementations; give the key encoder different weights first so that
    # the EMA of later steps is tested on distinct values
    with torch.no_grad():
        for p in model.encoder_k.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return model.train()


def _views(seed: int):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(N, 3, SIZE, SIZE, generator=g) for _ in range(2)]


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters()
            if p.requires_grad}


def _sgd(model):
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.SGD(params, lr=0.03, momentum=0.9, weight_decay=1e-4)


def _step(model, opt, forward, views, seed):
    opt.zero_grad()
    torch.manual_seed(seed)  # the same shuffle permutation in both models
    losses = forward(model, views)
    sum(losses.values()).backward()
    grads = _grads(model)
    opt.step()
    return {k: v.detach() for k, v in losses.items()}, grads


def _loss_forward(model, views):
    return model(views, None, mode='loss')


def compare_steps(ours, peer, forward=_loss_forward, wrap=lambda m: m,
                  view_seed=0):
    """Train both for STEPS steps; assert losses and grads agree each step.

    Returns:
        list[dict]: our losses per step.
    """
    run_o, run_p = wrap(ours), wrap(peer)
    opt_o, opt_p = _sgd(ours), _sgd(peer)
    history = []
    for step in range(STEPS):
        if step:
            compare_state(ours, peer, steps=step)
            peer.load_state_dict(ours.state_dict())  # drop the float drift
        views = _views(view_seed + step)
        loss_o, grad_o = _step(run_o, opt_o, forward, views, 1000 + step)
        loss_p, grad_p = _step(run_p, opt_p, forward, views, 1000 + step)
        assert set(loss_o) == set(loss_p), (loss_o, loss_p)
        for key in loss_o:
            torch.testing.assert_close(loss_o[key], loss_p[key], **TOL,
                                       msg=lambda m: f'step {step} {key}: {m}')
        assert set(grad_o) == set(grad_p)
        assert len(grad_o) > 50  # every parameter of backbone and neck
        for name in grad_o:
            torch.testing.assert_close(grad_o[name], grad_p[name], **TOL,
                                       msg=lambda m: f'step {step} grad {name}: {m}')
        history.append(loss_o)
    return history


def compare_state(ours, peer, steps=STEPS):
    """Queues, pointers, key-encoder parameters and steps, query weights."""
    state_p = peer.state_dict()
    compared = 0
    for name, value in ours.state_dict().items():
        is_buffer_of_key = name.startswith('encoder_k.module.') and (
            'running_' in name or 'num_batches_tracked' in name)
        if is_buffer_of_key:
            continue  # see the module docstring
        torch.testing.assert_close(value, state_p[name], **TOL,
                                   msg=lambda m: f'{name}: {m}')
        compared += 1
    for name in ours.queue_names:
        assert int(getattr(ours, f'{name}_ptr')) == int(state_p[f'{name}_ptr'])
    assert int(ours.encoder_k.steps) == int(peer.encoder_k.steps) == steps
    return compared


@pytest.fixture(scope='module', autouse=True)
def _mmpretrain():
    import_mmpretrain()


@pytest.mark.parametrize('algo', ['DenseCL', 'MoCoV2'])
def test_three_steps_match_mmpretrain(algo):
    ours = build_ours(algo)
    peer = build_peer(ours, DEPTH)
    before = {n: t.clone() for n, t in ours.state_dict().items()}
    history = compare_steps(ours, peer)
    # the comparison is not vacuous: the losses are real, the state moved
    assert all(0 < float(v) < 20 for h in history for v in h.values())
    assert history[0] != history[-1]
    for name in ['queue', 'backbone.conv1.weight', 'encoder_k.module.0.conv1.weight']:
        assert not torch.equal(before[name], ours.state_dict()[name]), name
    assert int(ours.queue_ptr) == (STEPS * N) % K  # wrapped around once
    assert compare_state(ours, peer) > 100
    # mmpretrain's key encoder was renamed to ours key by key: the module types
    assert type(peer.backbone).__module__.startswith('mmpretrain.')


def test_frozen_bn_is_caught_by_the_peer_comparison():
    """With mmdet's default norm_eval=True (allowed on purpose here), the
    losses differ from mmpretrain's by far more than the tolerance."""
    ours = build_ours('DenseCL', norm_eval=True)
    assert not any(m.training for m in ours.backbone.modules()
                   if isinstance(m, torch.nn.BatchNorm2d))
    peer = build_peer(ours, DEPTH)
    torch.manual_seed(0)
    views = _views(0)
    l_o = ours(views, None, mode='loss')
    torch.manual_seed(0)
    l_p = peer(views, None, mode='loss')
    assert abs(float(l_o['loss_single'] - l_p['loss_single'])) > 1e-2


def test_frozen_bn_is_refused_by_default():
    from tiny_models import build_tiny_model
    with pytest.raises(ValueError, match=r'model\.backbone\.norm_eval=False.*'
                       r'model\.allow_frozen_bn=True'):
        build_tiny_model(  # mmdet's ResNet defaults: norm_eval=True
            'DenseCL', depth=18, base_channels=64, hid_channels=8,
            feat_dim=8, queue_len=8,
            backbone=dict(norm_eval=True, zero_init_residual=True),
            data_preprocessor=dict(type='SelfSupDataPreprocessor'))


# --------------------------------------------------------------------------
# 2-process gloo DDP

WORLD_SIZE = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _no_shuffle(x):
    """``batch_shuffle_ddp`` with the identity permutation."""
    from densecl_plugin.models.utils import concat_all_gather
    n_all = concat_all_gather(x).shape[0]
    return x, torch.arange(n_all)


def _ddp_worker(rank: int, port: int) -> None:
    torch.set_num_threads(1)
    torch_dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                                  rank=rank, world_size=WORLD_SIZE)
    try:
        import_mmpretrain()
        from torch.nn.parallel import DistributedDataParallel as DDP

        import densecl_plugin.models.algorithms.base as base
        from densecl_plugin.models.utils import concat_all_gather

        def wrap(m):
            return DDP(m, broadcast_buffers=False, find_unused_parameters=False)

        for algo in ('DenseCL', 'MoCoV2'):
            ours = build_ours(algo)  # same seed: same weights on both ranks
            peer = build_peer(ours, DEPTH)
            fresh = build_ours(algo)
            # every rank trains on its own views
            history = compare_steps(ours, peer, wrap=wrap, view_seed=10 * rank)
            compare_state(ours, peer)
            both = concat_all_gather(ours.queue[None])  # 2xDxK
            assert torch.equal(both[0], both[1])
            # shuffle BN matters under DDP: without the cross-rank shuffle the
            # key BN sees only this rank's samples and the loss changes
            shuffle = base.batch_shuffle_ddp
            base.batch_shuffle_ddp = _no_shuffle
            try:
                torch.manual_seed(1000)
                unshuffled = wrap(fresh)(_views(10 * rank), None, mode='loss')
            finally:
                base.batch_shuffle_ddp = shuffle
            key = 'loss_single' if algo == 'DenseCL' else 'loss'
            diff = abs(float(unshuffled[key] - history[0][key]))
            assert diff > 1e-4, f'{algo}: shuffle BN did not change the loss ({diff})'
    finally:
        torch_dist.destroy_process_group()


def test_ddp_three_steps_match_mmpretrain():
    mp.spawn(_ddp_worker, args=(_free_port(), ), nprocs=WORLD_SIZE, join=True)
