# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Exact, memory-frugal InfoNCE against a queue of negatives (MoCo/DenseCL).

The plain loss builds the logits ``cat([l_pos, l_neg]) / T`` of shape
``(M, 1 + K)``, and autograd keeps them (and their softmax) for backward.
For DenseCL's dense loss ``M = N * S^2`` (1568 at N=32, S=7) and
``K = 65536``: 0.4 GB per buffer in float32. Here the rows are processed in
chunks; each chunk's logits live only while the chunk is processed, and the
gradient with respect to the inputs is computed in the same pass (it needs
the softmax, which is at hand), so only ``(M, D)`` gradients are stored. The
two matrix products are those of the plain forward and backward (``q @
queue`` and ``p_neg @ queue.T``), and the exponential is taken once instead
of twice, so the FLOPs are the plain ones.
"""
import math
from typing import Optional

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

#: logits elements per chunk when ``chunk_size`` is None (32 MiB in
#: float32: 128 rows at K=65536, balanced to 98 rows for DenseCL's M=392 and
#: 121 for M=1568). Below glibc's largest mmap threshold (32 MiB), so the
#: buffer is reused from the heap instead of being mapped, page-faulted in
#: and unmapped every step (12.5k page faults per step with 64 MiB); as fast
#: as 196- or 224-row chunks on a 2-core CPU (the products stay large), and
#: half the memory
DEFAULT_CHUNK_ELEMS = 1 << 23


class _QueueInfoNCE(torch.autograd.Function):
    """``mean_i CE([q_i . k_i, q_i . queue] / T, 0)``; gradient in forward.

    Per chunk of rows, in one reused ``(chunk, K)`` buffer: one matrix
    product for the negative logits, the row max (logsumexp's shift), one
    ``exp`` in place whose row sums give the partition function and, when a
    gradient is needed, one matrix product with the same ``exp`` values
    (the softmax's ``1 / Z`` is applied to the small ``(chunk, D)`` result,
    not to the buffer).
    """

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, queue: Tensor, inv_T: float,
                chunk_size: int, weight: Optional[Tensor] = None) -> Tensor:
        M, K = q.shape[0], queue.shape[1]  # rows (queries), negatives
        need_q, need_k, need_queue = ctx.needs_input_grad[:3]
        need_grad = need_q or need_k or need_queue
        # d(loss)/d(row loss) times d(logit)/d(dot): 1/M for the mean, or
        # each row's weight (M,)
        scale = inv_T / M if weight is None else weight * inv_T
        q_T = q * inv_T  # MxD: logits come out of the product scaled
        buf = q.new_empty(min(chunk_size, M), K)  # cxK, reused per chunk
        loss_sum = q.new_zeros(())  # ()
        grad_q = torch.empty_like(q) if need_q else None  # MxD
        grad_k = torch.empty_like(k) if need_k else None  # MxD
        grad_queue = torch.zeros_like(queue) if need_queue else None  # DxK
        for s in range(0, M, chunk_size):
            q_c, k_c = q_T[s:s + chunk_size], k[s:s + chunk_size]  # cxD
            e_neg = buf[:q_c.shape[0]]  # cxK
            l_pos = (q_c * k_c).sum(dim=1)  # c: positive logits
            torch.mm(q_c, queue, out=e_neg)  # cxK: negative logits
            m = torch.maximum(l_pos, e_neg.amax(dim=1))  # c: row max
            e_neg.sub_(m[:, None]).exp_()  # cxK: exp(l_neg - m)
            e_pos = (l_pos - m).exp_()  # c
            Z = e_neg.sum(dim=1).add_(e_pos)  # c: partition function
            row_loss = m.add_(Z.log()).sub_(l_pos)  # c: lse - l_pos
            if weight is None:
                loss_sum += row_loss.sum()
                sc = scale
            else:
                sc = scale[s:s + chunk_size]  # c
                loss_sum += row_loss.mul_(weight[s:s + chunk_size]).sum()
            if not need_grad:
                continue
            w_neg = Z.reciprocal_().mul_(sc)  # c: p_neg = e_neg / Z, scaled
            w_pos = (e_pos * w_neg).sub_(sc)[:, None]  # cx1: dL/dl_pos
            if need_q:  # dL/dq = (p_pos - 1) k + p_neg @ queue^T, scaled
                grad_q[s:s + chunk_size] = torch.mm(e_neg, queue.t()).mul_(
                    w_neg[:, None]).addcmul_(k_c, w_pos)  # cxD
            if need_k:  # dL/dk = (p_pos - 1) q, scaled
                torch.mul(q[s:s + chunk_size], w_pos,
                          out=grad_k[s:s + chunk_size])  # cxD
            if need_queue:  # dL/dqueue = q^T @ p_neg, scaled
                grad_queue.addmm_((q[s:s + chunk_size] * w_neg[:, None]).t(),
                                  e_neg)  # DxK
        ctx.save_for_backward(grad_q, grad_k, grad_queue)
        return loss_sum / M if weight is None else loss_sum

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_loss: Tensor):
        grad_q, grad_k, grad_queue = ctx.saved_tensors
        grads = [None if g is None else g * grad_loss
                 for g in (grad_q, grad_k, grad_queue)]
        return (*grads, None, None, None)


def _check_inputs(q: Tensor, k: Tensor, queue: Tensor,
                  valid: Optional[Tensor]) -> None:
    if q.dim() != 2 or k.shape != q.shape:
        raise ValueError(f'q and k must both have shape (M, D), got q '
                         f'{tuple(q.shape)} and k {tuple(k.shape)}')
    if queue.dim() != 2 or queue.shape[0] != q.shape[1]:
        raise ValueError(f'queue must have shape (D, K) = ({q.shape[1]}, K) '
                         f'for q of shape {tuple(q.shape)}, got '
                         f'{tuple(queue.shape)}')
    if valid is not None and (valid.dtype != torch.bool
                              or valid.shape != q.shape[:1]):
        raise ValueError(f'valid must be a bool tensor of shape '
                         f'({q.shape[0]},), got {valid.dtype} '
                         f'{tuple(valid.shape)}')


def queue_infonce_loss(q: Tensor,
                       k: Tensor,
                       queue: Tensor,
                       temperature: float,
                       valid: Optional[Tensor] = None,
                       chunk_size: Optional[int] = None) -> Tensor:
    """InfoNCE of queries against their positive keys and a queue, exactly.

    Equals ``F.cross_entropy(cat([l_pos, l_neg], 1) / T, zeros)`` with
    ``l_pos = (q * k).sum(1, keepdim=True)`` and ``l_neg = q @ queue``
    (value and gradients with respect to ``q``, ``k`` and ``queue``, for
    whichever of them require grad), without materialising the ``(M, 1 + K)``
    logits. The logits and the softmax are computed in float32 (or float64
    if the inputs are), also under autocast, so that bf16/fp16 training stays
    sound; the gradient is returned in the input dtype.

    The models call it through :meth:`ContrastiveHead.loss_queue
    <densecl_plugin.models.heads.ContrastiveHead.loss_queue>`, whose
    constructor checks ``temperature`` and ``chunk_size``; this function
    checks only the tensors' shapes.

    Args:
        q (Tensor): Queries, shape ``(M, D)``, usually L2-normalised.
        k (Tensor): The positive key of each query, shape ``(M, D)``.
        queue (Tensor): The negatives, shape ``(D, K)``.
        temperature (float): ``T``.
        valid (Tensor, optional): Bool ``(M,)``; rows marked False are left
            out (the mean runs over the valid rows). Computed in the
            masked-weight form: all ``M`` rows are computed and weighted by
            ``valid / valid.sum()``, which gives the value and gradients of
            the mean over ``q[valid]`` without boolean indexing (no host
            synchronisation). Defaults to None (all).
        chunk_size (int, optional): The most rows per chunk; the rows are
            split into equal chunks (no small remainder chunk). Defaults to
            None: ``max(1, 2**23 // K)`` rows (32 MiB of float32 logits).

    Returns:
        Tensor: The scalar mean loss (0, still connected to ``q``, with zero
        gradients, when no row is valid or there are no rows).
    """
    _check_inputs(q, k, queue, valid)
    M, K = q.shape[0], queue.shape[1]
    if M == 0:
        return q.sum() * 0.
    dtype = torch.promote_types(q.dtype, torch.float32)
    weight = None
    if valid is not None:
        # masked-weight form: every row is computed, row i weighs
        # valid_i / n_valid (0 for left-out rows), so the result is the mean
        # over the valid rows with its gradients, and neither the number of
        # valid rows nor their positions is read on the host (no boolean
        # indexing, no device synchronisation); no valid row: 0
        w = valid.to(dtype)  # M
        weight = w / w.sum().clamp_min(1.)  # M
    max_rows = chunk_size or max(1, DEFAULT_CHUNK_ELEMS // max(K, 1))
    n_chunks = math.ceil(M / max_rows)
    chunk_size = math.ceil(M / n_chunks)  # equal chunks, no small remainder
    with torch.autocast(device_type=q.device.type, enabled=False):
        return _QueueInfoNCE.apply(q.to(dtype), k.to(dtype), queue.to(dtype),
                                   1.0 / temperature, int(chunk_size), weight)
