# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Health metrics of momentum-contrast pre-training (see
``docs/pretraining_health.md``).

Every function takes tensors that a training step already has (the
L2-normalised queries ``q`` and keys ``k`` of shape ``(N, D)``, a queue of
shape ``(D, K)``) and returns a detached float32 scalar; nothing here needs
a gradient or a host read. :func:`health_metrics` bundles them under the
``health_*`` names that :class:`BaseMomentumContrast` logs (no name contains
``loss``, so MMEngine never adds them to the loss).
"""
import math
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import Tensor


@torch.no_grad()
def positive_cosine(q: Tensor, k: Tensor) -> Tensor:
    """Mean cosine of each query with its own key.

    Args:
        q (Tensor): Queries ``(N, D)``.
        k (Tensor): Their keys ``(N, D)``.

    Returns:
        Tensor: Scalar in [-1, 1] (1: the views map to the same point).
    """
    q, k = F.normalize(q.float(), dim=1), F.normalize(k.float(), dim=1)
    return (q * k).sum(dim=1).mean()


@torch.no_grad()
def negative_cosine(q: Tensor, queue: Tensor) -> Tensor:
    """Mean cosine of the queries to the negatives (all columns of ``queue``).

    ``mean_ij q_i . n_j = (mean_i q_i) . (mean_j n_j)``: O((N + K) D), not
    the ``N x K`` logits.

    Args:
        q (Tensor): Queries ``(N, D)``.
        queue (Tensor): Negatives ``(D, K')`` (``K' >= 1`` columns, e.g. the
            filled part of a queue), each column L2-normalised.

    Returns:
        Tensor: Scalar in [-1, 1] (~0 for spread-out embeddings, -> the
        positive cosine when everything collapses to one point).
    """
    q = F.normalize(q.float(), dim=1)
    return q.mean(dim=0) @ queue.float().mean(dim=1)


@torch.no_grad()
def embedding_std(z: Tensor) -> Tensor:
    """Per-dimension std of the L2-normalised ``z``, averaged, x sqrt(D).

    About 1 for embeddings spread uniformly on the sphere, 0 when all
    collapse to one point. The std is the unbiased one (``N - 1``).

    Args:
        z (Tensor): Embeddings ``(N, D)``, ``N >= 2``.

    Returns:
        Tensor: Scalar >= 0.
    """
    z = F.normalize(z.float(), dim=1)
    return z.std(dim=0).mean() * math.sqrt(z.shape[1])


@torch.no_grad()
def alignment(q: Tensor, k: Tensor, alpha: float = 2.0) -> Tensor:
    """Wang & Isola (2020) alignment: ``E ||q_i - k_i||^alpha``.

    Args:
        q (Tensor): L2-normalised queries ``(N, D)``.
        k (Tensor): Their L2-normalised keys ``(N, D)``.
        alpha (float): The exponent. Defaults to 2.0.

    Returns:
        Tensor: Scalar in [0, 2^alpha] (0: perfectly aligned pairs).
    """
    return (q.float() - k.float()).norm(dim=1).pow(alpha).mean()


@torch.no_grad()
def uniformity(x: Tensor, t: float = 2.0) -> Tensor:
    """Wang & Isola (2020) uniformity: ``log E_{i<j} exp(-t ||x_i - x_j||^2)``.

    Args:
        x (Tensor): L2-normalised embeddings ``(N, D)``, ``N >= 2``.
        t (float): The temperature. Defaults to 2.0.

    Returns:
        Tensor: Scalar <= 0 (0: all embeddings identical; lower is more
        uniform, about -3.9 for t=2 on a high-dimensional sphere).
    """
    sq = torch.pdist(x.float()).pow(2)  # N(N-1)/2
    return sq.mul(-t).exp().mean().log()


@torch.no_grad()
def own_in_queue_share(idx: Tensor, queue_idx: Tensor) -> Tensor:
    """The share of queries whose own image has an older key in the queue,
    measured (``health_own_in_queue``; the sanity hook's ``own_key_share``
    is its expected value for a shuffled sampler).

    Args:
        idx (Tensor): The data-set index of each query's image, long
            ``(N,)``.
        queue_idx (Tensor): The data-set index of each queue column before
            this step's enqueue, long ``(K,)``; -1 for no real key.

    Returns:
        Tensor: Scalar in [0, 1] (such a key is a false negative).
    """
    return torch.isin(idx, queue_idx[queue_idx >= 0]).float().mean()


@torch.no_grad()
def health_metrics(q: Tensor, k: Tensor, queue: Tensor,
                   num_real: Optional[int] = None) -> Dict[str, Tensor]:
    """The metrics :class:`BaseMomentumContrast` logs, by their log names.

    Args:
        q (Tensor): L2-normalised queries ``(N, D)``, ``N >= 2``.
        k (Tensor): Their L2-normalised keys ``(N, D)``.
        queue (Tensor): The queue the loss used ``(D, K)`` (before this
            step's keys were enqueued).
        num_real (int, optional): How many columns of ``queue``, from the
            first, hold real (enqueued) keys; the rest is the random
            initialisation. Defaults to None (all K).

    Returns:
        dict[str, Tensor]: ``health_pos_cos``, ``health_neg_cos`` (over the
        real keys; absent while there are none), ``health_emb_std``
        (of ``q``), ``health_align``, ``health_uniform`` (the mean of the
        uniformity of ``q`` and of ``k``) and ``health_queue_fill`` (the
        share of the K columns holding real keys).
    """
    K = queue.shape[1]
    n = K if num_real is None else max(0, min(int(num_real), K))
    out = dict(health_pos_cos=positive_cosine(q, k))
    if n > 0:
        out['health_neg_cos'] = negative_cosine(q, queue[:, :n])
    out['health_emb_std'] = embedding_std(q)
    out['health_align'] = alignment(q, k)
    out['health_uniform'] = (uniformity(q) + uniformity(k)) / 2
    out['health_queue_fill'] = torch.tensor(n / K, device=q.device)
    return out
