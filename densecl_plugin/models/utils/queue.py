# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The one enqueue helper of the momentum-contrast queues (MoCo, DenseCL)."""
import torch
from torch import Tensor


@torch.no_grad()
def enqueue_(queue: Tensor, queue_ptr: Tensor, keys: Tensor) -> None:
    """Write ``keys`` into the ring buffer ``queue`` at ``queue_ptr``.

    In place.

    Key ``i`` goes to column ``(ptr + i) % K``, so the queue length ``K``
    need not divide the (global) batch size: writing wraps around. When more
    than ``K`` keys arrive at once, writing them one after the other would
    leave only the last ``K``; exactly those are written. The pointer then
    moves to ``(ptr + B) % K``.

    Args:
        queue (Tensor): The queue, shape ``(D, K)``; updated in place.
        queue_ptr (Tensor): The write position, a long tensor of shape
            ``(1,)``; updated in place.
        keys (Tensor): The new keys, shape ``(B, D)``, usually all-gathered
            over the ranks so that every rank enqueues the same keys.

    Raises:
        ValueError: if ``keys`` is not ``(B, D)`` with the queue's ``D``.
    """
    D, K = queue.shape
    if keys.dim() != 2 or keys.shape[1] != D:
        raise ValueError(f'keys to enqueue must have shape (B, {D}) for a '
                         f'queue of shape {tuple(queue.shape)}, got '
                         f'{tuple(keys.shape)}')
    B = keys.shape[0]
    # the columns are computed on the queue's device from the pointer
    # tensor: the pointer is never read on the host (no synchronisation)
    idx = torch.arange(B, device=queue.device).add_(
        queue_ptr.to(queue.device)).remainder_(K)  # B
    if B > K:  # later keys would overwrite earlier ones: keep the last K
        keys, idx = keys[-K:], idx[-K:]  # KxD, K
    queue.index_copy_(1, idx, keys.t().to(queue.dtype))  # DxK
    queue_ptr.add_(B).remainder_(K)
