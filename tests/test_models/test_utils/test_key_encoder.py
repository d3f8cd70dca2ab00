# Copyright (c) densecl_plugin contributors. All rights reserved.
"""models.utils.key_encoder: the MomentumEncoder (paper convention,
first-step copy, own buffers) and the one enqueue helper (ring buffer with
wrap-around). The shuffle and gather collectives are tested under real
gloo DDP in test_algorithms/test_momentum_contrast_ddp.py."""
import pytest
import torch
from torch import nn

from densecl_plugin.models.utils import MomentumEncoder, enqueue_


def _query():
    torch.manual_seed(0)
    return nn.Sequential(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)),
                         nn.Linear(4, 2))


@pytest.mark.parametrize('m', [0, 1, -0.5, 1.5, float('nan'), '0.9'])
def test_momentum_out_of_range(m):
    with pytest.raises(ValueError, match='open interval'):
        MomentumEncoder(_query(), m)


@pytest.mark.parametrize('mmpretrain_m', [0.001, 0.01, 0.3])
def test_inverted_convention_is_read_as_mmpretrain(mmpretrain_m):
    with pytest.warns(UserWarning, match="mmpretrain's inverted convention"):
        enc = MomentumEncoder(_query(), mmpretrain_m)
    paper = MomentumEncoder(_query(), 1 - mmpretrain_m)
    assert enc.m == pytest.approx(paper.m)
    q = _query()
    for e in (enc, paper):
        e.update(q)  # first update: copy
    with torch.no_grad():
        for p in q.parameters():
            p.add_(1.0)
    enc.update(q)
    paper.update(q)
    for p_e, p_p, p_q in zip(enc.parameters(), paper.parameters(), q.parameters()):
        # mmengine's EMA: avg <- (1 - momentum) * avg + momentum * src
        expect = (1 - mmpretrain_m) * (p_q - 1.0) + mmpretrain_m * p_q
        torch.testing.assert_close(p_e, expect, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(p_e, p_p)


def test_state_dict_layout_and_frozen():
    enc = MomentumEncoder(_query(), 0.99)
    keys = list(enc.state_dict())
    assert 'steps' in keys and enc.steps.dtype == torch.long
    assert enc.steps.shape == ()  # as mmpretrain 1.2 checkpoints
    assert 'module.0.0.weight' in keys and 'module.0.1.running_mean' in keys
    assert 'module.1.weight' in keys
    assert not any(p.requires_grad for p in enc.parameters())


def test_first_update_copies_then_ema_exactly():
    q = _query()
    enc = MomentumEncoder(q, 0.9)
    for p in q.parameters():  # what init_weights would do after __init__
        nn.init.normal_(p)
    enc.update(q)
    for pk, pq in zip(enc.module.parameters(), q.parameters()):
        assert torch.equal(pk, pq)
    assert enc.steps.item() == 1
    old = [p.clone() for p in enc.module.parameters()]
    for p in q.parameters():
        p.data.add_(torch.randn_like(p))
    enc.update(q)
    for pk, pk_old, pq in zip(enc.module.parameters(), old, q.parameters()):
        torch.testing.assert_close(pk, 0.9 * pk_old + 0.1 * pq, rtol=0,
                                   atol=1e-6)
    assert enc.steps.item() == 2


def test_buffers_are_not_copied():
    q = _query()
    enc = MomentumEncoder(q, 0.999)
    q[0][1].running_mean.fill_(5.)
    enc.update(q)
    enc.update(q)
    assert enc.module[0][1].running_mean.abs().max() == 0


def test_mismatched_query_is_rejected():
    enc = MomentumEncoder(_query(), 0.999)
    with pytest.raises(ValueError, match='does not have the parameters'):
        enc.update(nn.Linear(4, 2))


def _sequential_reference(queue, ptr, keys):
    """Write keys one by one (the definition of a ring buffer)."""
    queue = queue.clone()
    K = queue.shape[1]
    for key in keys:
        queue[:, ptr] = key
        ptr = (ptr + 1) % K
    return queue, ptr


@pytest.mark.parametrize('K,batches', [(8, [4, 4, 4]), (5, [3, 3, 3]),
                                       (6, [4]), (4, [4, 2]), (3, [7, 1]),
                                       (5, [10, 2])])
def test_enqueue_matches_sequential_writes(K, batches):
    D = 3
    queue = torch.randn(D, K)
    queue_ptr = torch.zeros(1, dtype=torch.long)
    ref_queue, ref_ptr = queue.clone(), 0
    for step, B in enumerate(batches):
        keys = torch.randn(B, D) + 10 * step
        ref_queue, ref_ptr = _sequential_reference(ref_queue, ref_ptr, keys)
        enqueue_(queue, queue_ptr, keys)
        assert torch.equal(queue, ref_queue)
        assert queue_ptr.tolist() == [ref_ptr]
        assert queue_ptr.dtype == torch.long


def test_wrap_around_explicit():
    queue = torch.zeros(1, 5)
    ptr = torch.tensor([3])
    enqueue_(queue, ptr, torch.tensor([[1.], [2.], [3.]]))
    assert queue.tolist() == [[3., 0., 0., 1., 2.]] and ptr.item() == 1


def test_bad_keys_shape():
    with pytest.raises(ValueError, match=r'\(B, 4\).*got \(2, 3\)'):
        enqueue_(torch.zeros(4, 6), torch.zeros(1, dtype=torch.long),
                 torch.zeros(2, 3))
