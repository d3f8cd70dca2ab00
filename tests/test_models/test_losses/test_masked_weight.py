# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The masked-weight form of the dense loss (``valid`` rows, as
``matching='mutual'/'geometric'`` give) against the boolean-index reference:
the mean over the kept rows, by a plain loop, value and gradients equal in
float32 to 1e-6 relative; and no host synchronisation in the step."""
import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from densecl_plugin.models.losses import queue_infonce_loss

TOL = dict(rtol=1e-6, atol=1e-7)


def assert_close_rel(a, b, rel=1e-6):
    """Equal to ``rel`` of ``b``'s scale: elementwise ``rtol=rel`` with
    ``atol = rel * max|b|`` (a gradient element near zero is the difference
    of two terms of the scale of the largest ones)."""
    torch.testing.assert_close(a, b, rtol=rel,
                               atol=rel * float(b.abs().max()))


def loop_reference(q, k, queue, T, valid):
    """Boolean-index reference: keep the valid rows, one CE each, mean."""
    kept = [i for i in range(q.shape[0]) if bool(valid[i])]
    if not kept:
        return (q.sum() + k.sum() + queue.sum()) * 0.
    rows = []
    for i in kept:
        l_pos = torch.einsum('d,d->', q[i], k[i])
        l_neg = torch.einsum('d,dk->k', q[i], queue)
        logits = torch.cat([l_pos[None], l_neg]) / T
        rows.append(torch.logsumexp(logits, dim=0) - logits[0])
    return torch.stack(rows).mean()


def _inputs(M, D, K, seed):
    g = torch.Generator().manual_seed(seed)
    q = F.normalize(torch.randn(M, D, generator=g), dim=1)
    k = F.normalize(torch.randn(M, D, generator=g), dim=1)
    queue = F.normalize(torch.randn(D, K, generator=g), dim=0)
    valid = torch.rand(M, generator=g) > 0.5
    return q, k, queue, valid


def _value_and_grads(fn, q, k, queue):
    q, k, queue = (t.clone().requires_grad_(True) for t in (q, k, queue))
    loss = fn(q, k, queue)
    loss.backward()
    return loss.detach(), (q.grad, k.grad, queue.grad)


@pytest.mark.parametrize('M,K,chunk_size,seed', [(30, 64, None, 0),
                                                 (30, 64, 7, 1),
                                                 (49, 200, 16, 2)])
@pytest.mark.parametrize('T', [0.2, 0.07])
def test_masked_weight_equals_boolean_index_reference(M, K, chunk_size, seed,
                                                      T):
    q, k, queue, valid = _inputs(M, 16, K, seed)
    assert 0 < int(valid.sum()) < M
    ref, ref_g = _value_and_grads(
        lambda *a: loop_reference(*a, T, valid), q, k, queue)
    out, g = _value_and_grads(
        lambda *a: queue_infonce_loss(*a, T, valid, chunk_size), q, k, queue)
    torch.testing.assert_close(out, ref, **TOL)
    for a, b in zip(g, ref_g):
        assert_close_rel(a, b)
    assert g[0][~valid].abs().max() == 0 and g[1][~valid].abs().max() == 0


def test_all_and_no_rows():
    q, k, queue, _ = _inputs(12, 8, 32, 3)
    all_rows = torch.ones(12, dtype=torch.bool)
    torch.testing.assert_close(queue_infonce_loss(q, k, queue, 0.2, all_rows),
                               queue_infonce_loss(q, k, queue, 0.2), **TOL)
    none = torch.zeros(12, dtype=torch.bool)
    out, g = _value_and_grads(
        lambda *a: queue_infonce_loss(*a, 0.2, none), q, k, queue)
    assert out.item() == 0 and all(t.abs().max() == 0 for t in g)


class _HostReads(TorchDispatchMode):
    """Records the ops that read a tensor's value on the host or size a
    result by its values (boolean indexing: ``nonzero``)."""

    SYNCING = ('_local_scalar_dense', 'nonzero', 'is_nonzero', 'item',
               'masked_select')

    def __init__(self):
        super().__init__()
        self.seen = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.__name__.split('.')[0]
        if name in self.SYNCING or (name == 'index' and any(
                isinstance(i, torch.Tensor) and i.dtype == torch.bool
                for i in (args[1] if len(args) > 1 else ()) if i is not None)):
            self.seen.append(func.__name__)
        return func(*args, **(kwargs or {}))


def test_masked_loss_reads_nothing_on_the_host():
    q, k, queue, valid = _inputs(20, 8, 32, 4)
    q.requires_grad_(True)
    with _HostReads() as mode:
        queue_infonce_loss(q, k, queue, 0.2, valid).backward()
    assert mode.seen == []


@pytest.mark.parametrize('matching', ['feature', 'mutual'])
def test_densecl_step_reads_nothing_on_the_host(matching):
    """After the first step (which copies the query into the key encoder),
    a DenseCL loss + backward reads no tensor value on the host: no
    ``.item()``, no boolean indexing, no queue-pointer read."""
    from tiny_models import build_tiny_model
    torch.manual_seed(0)
    model = build_tiny_model('DenseCL', depth=18, base_channels=8,
                             hid_channels=16, feat_dim=8, queue_len=16,
                             matching=matching).train()
    views = [torch.randn(2, 3, 64, 64) for _ in range(2)]
    sum(model(views, mode='loss').values()).backward()  # first step
    with _HostReads() as mode:
        sum(model(views, mode='loss').values()).backward()
    assert mode.seen == []
