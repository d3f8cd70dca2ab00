# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The chunked InfoNCE equals the plain cross-entropy, value and gradients."""
import pytest
import torch
import torch.nn.functional as F

from densecl_plugin.models.heads import ContrastiveHead
from densecl_plugin.models.losses import queue_infonce_loss


def plain_infonce(q, k, queue, T, valid=None):
    """The textbook loss: CE(cat([l_pos, l_neg]) / T, 0), rows masked out."""
    l_pos = torch.einsum('nc,nc->n', q, k)[:, None]  # Mx1
    l_neg = torch.einsum('nc,ck->nk', q, queue)  # MxK
    logits = torch.cat([l_pos, l_neg], dim=1) / T  # Mx(1+K)
    labels = torch.zeros(q.shape[0], dtype=torch.long)
    if valid is not None:
        labels[~valid] = -100  # CE's ignore_index
    return F.cross_entropy(logits, labels, ignore_index=-100)


def _inputs(M, D, K, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = F.normalize(torch.randn(M, D, generator=g, dtype=dtype), dim=1)
    k = F.normalize(torch.randn(M, D, generator=g, dtype=dtype), dim=1)
    queue = F.normalize(torch.randn(D, K, generator=g, dtype=dtype), dim=0)
    return q, k, queue


def _loss_and_grads(fn, q, k, queue, grad_of):
    q, k, queue = (t.clone().requires_grad_(name in grad_of)
                   for name, t in zip('q k queue'.split(), (q, k, queue)))
    loss = fn(q, k, queue)
    loss.backward()
    return loss.detach(), [t.grad for t in (q, k, queue)]


@pytest.mark.parametrize('dtype,tol', [(torch.float32, 1e-5),
                                       (torch.float64, 1e-10)])
@pytest.mark.parametrize('M,K,chunk_size', [(1, 5, None), (37, 64, 8),
                                            (50, 300, 7), (64, 1024, 64),
                                            (10, 16, 100)])
@pytest.mark.parametrize('grad_of', [('q', ), ('q', 'k', 'queue')])
@pytest.mark.parametrize('T', [0.2, 0.07])
def test_matches_plain_cross_entropy(dtype, tol, M, K, chunk_size, grad_of,
                                     T):
    q, k, queue = _inputs(M, 16, K, dtype)
    ref_loss, ref_grads = _loss_and_grads(
        lambda *a: plain_infonce(*a, T), q, k, queue, grad_of)
    loss, grads = _loss_and_grads(
        lambda *a: queue_infonce_loss(*a, T, chunk_size=chunk_size), q, k,
        queue, grad_of)
    assert loss.dtype == dtype
    torch.testing.assert_close(loss, ref_loss, rtol=tol, atol=tol)
    for name, g, g_ref in zip(('q', 'k', 'queue'), grads, ref_grads):
        if name in grad_of:
            torch.testing.assert_close(g, g_ref, rtol=tol, atol=tol)
        else:
            assert g is None


@pytest.mark.parametrize('chunk_size', [None, 3])
def test_masked_rows_are_left_out(chunk_size):
    q, k, queue = _inputs(20, 8, 40, torch.float64, seed=1)
    valid = torch.rand(20, generator=torch.Generator().manual_seed(2)) > 0.4
    assert 0 < valid.sum() < 20
    ref_loss, ref_grads = _loss_and_grads(
        lambda *a: plain_infonce(*a, 0.2, valid), q, k, queue, ('q', ))
    loss, grads = _loss_and_grads(
        lambda *a: queue_infonce_loss(*a, 0.2, valid, chunk_size), q, k,
        queue, ('q', ))
    torch.testing.assert_close(loss, ref_loss)
    torch.testing.assert_close(grads[0], ref_grads[0])
    assert grads[0][~valid].abs().max() == 0  # ignored rows get no gradient


def test_no_valid_row_gives_zero_loss_still_connected():
    q, k, queue = _inputs(4, 8, 10, torch.float32)
    q.requires_grad_(True)
    loss = queue_infonce_loss(q, k, queue, 0.2,
                              valid=torch.zeros(4, dtype=torch.bool))
    loss.backward()
    assert loss.item() == 0 and q.grad is not None and q.grad.abs().max() == 0
    empty = torch.zeros(0, 8, requires_grad=True)
    assert queue_infonce_loss(empty, empty.detach(), queue, 0.2).item() == 0


@pytest.mark.parametrize('M,max_rows,sizes', [(392, 128, [98] * 4),
                                              (10, 4, [4, 4, 2])])
def test_chunks_are_balanced(M, max_rows, sizes, monkeypatch):
    """Equal chunks up to the last (no 8-row product reading the whole queue for
    little work); checked through the rows each chunk's product sees."""
    seen = []
    mm = torch.mm

    def spy(a, b, **kwargs):
        if b.shape[1] == 16:  # the (rows, D) @ (D, K) logits product
            seen.append(a.shape[0])
        return mm(a, b, **kwargs)

    monkeypatch.setattr(torch, 'mm', spy)
    q, k, queue = _inputs(M, 8, 16, torch.float32)
    queue_infonce_loss(q, k, queue, 0.2, chunk_size=max_rows)
    assert sorted(seen, reverse=True) == sizes


def test_large_logits_are_stable():
    """T small and aligned vectors: the max-subtraction keeps it finite."""
    q, k, queue = _inputs(6, 8, 50, torch.float32)
    queue[:, :5] = q[:5].t()  # negatives identical to the queries
    for T in (0.01, 0.001):
        ref, ref_g = _loss_and_grads(lambda *a: plain_infonce(*a, T), q, k,
                                     queue, ('q', ))
        out, g = _loss_and_grads(lambda *a: queue_infonce_loss(*a, T), q, k,
                                 queue, ('q', ))
        assert torch.isfinite(out) and torch.isfinite(g[0]).all()
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-4)
        torch.testing.assert_close(g[0], ref_g[0], rtol=1e-4, atol=1e-4)


def test_bf16_autocast_computes_in_float32():
    q, k, queue = _inputs(12, 16, 64, torch.float32)
    ref = plain_infonce(q, k, queue, 0.2)
    q16 = q.to(torch.bfloat16).requires_grad_(True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss = queue_infonce_loss(q16, k.to(torch.bfloat16),
                                  queue.to(torch.bfloat16), 0.2)
    assert loss.dtype == torch.float32
    loss.backward()
    assert q16.grad.dtype == torch.bfloat16
    # only the inputs' bf16 rounding separates it from the float32 loss
    torch.testing.assert_close(loss, ref, rtol=2e-2, atol=2e-2)


def test_no_grad_skips_gradient_work_and_gives_value():
    q, k, queue = _inputs(9, 8, 30, torch.float64)
    with torch.no_grad():
        loss = queue_infonce_loss(q, k, queue, 0.2, chunk_size=2)
    torch.testing.assert_close(loss, plain_infonce(q, k, queue, 0.2))


def test_module_and_bad_inputs():
    """The module form is ContrastiveHead.loss_queue (the one copy of the
    temperature / chunk_size checks)."""
    q, k, queue = _inputs(5, 8, 10, torch.float32)
    torch.testing.assert_close(
        ContrastiveHead(temperature=0.2, chunk_size=2).loss_queue(q, k, queue),
        plain_infonce(q, k, queue, 0.2))
    with pytest.raises(ValueError, match='temperature'):
        ContrastiveHead(temperature=0.)
    with pytest.raises(ValueError, match='chunk_size'):
        ContrastiveHead(temperature=0.2, chunk_size=0)
    with pytest.raises(ValueError, match=r'queue must have shape \(D, K\)'):
        queue_infonce_loss(q, k, queue.t(), 0.2)
    with pytest.raises(ValueError, match='q and k'):
        queue_infonce_loss(q, k[:3], queue, 0.2)
    with pytest.raises(ValueError, match='valid must be a bool'):
        queue_infonce_loss(q, k, queue, 0.2, valid=torch.ones(5))
