# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The one enqueue helper: ring buffer with wrap-around."""
import pytest
import torch

from densecl_plugin.models.utils import enqueue_


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
