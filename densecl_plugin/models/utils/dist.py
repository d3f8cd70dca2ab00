# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Collectives of momentum contrast on top of :mod:`mmengine.dist`.

Every function also works without an initialised process group (one GPU, the
CPU, a test): ``mmengine.dist`` then gathers only the local tensor and
broadcasts nothing, so :func:`batch_shuffle_ddp` becomes a *local*
permutation of the batch. That keeps the code path identical, but note what
it means for "shuffle BN": with a single process the batch-norm statistics of
the key encoder are computed over the same samples as without the shuffle,
so it cannot hide information between the two views; only under DDP does the
shuffle move samples across ranks (and so across BN batches).
"""
from typing import List, Sequence, Tuple, Union

import torch
from mmengine import dist
from torch import Tensor


@torch.no_grad()
def concat_all_gather(tensor: Tensor) -> Tensor:
    """Concatenate ``tensor`` from all ranks along dim 0, in rank order.

    No gradient flows through the gather. Every rank must pass a tensor of
    the same shape.

    Args:
        tensor (Tensor): The local tensor, shape ``(N, ...)``.

    Returns:
        Tensor: Shape ``(world_size * N, ...)``; ``tensor`` itself when not
        distributed.
    """
    gathered = dist.all_gather(tensor.contiguous())  # world x (N, ...)
    if len(gathered) == 1:
        return gathered[0]
    return torch.cat(gathered, dim=0)  # (world*N, ...)


@torch.no_grad()
def batch_shuffle_ddp(x: Tensor) -> Tuple[Tensor, Tensor]:
    """Shuffle the global batch across ranks (for shuffle BN).

    All ranks gather their batches, rank 0 draws one permutation of the
    global batch and broadcasts it, and each rank keeps its slice of the
    permuted batch, so a rank's key-encoder BN sees samples of other ranks.
    Without a process group this is a local permutation (see the module
    docstring).

    Args:
        x (Tensor): The local batch, shape ``(N, ...)``; every rank must have
            the same ``N``.

    Returns:
        tuple[Tensor, Tensor]: ``x_shuffled`` of shape ``(N, ...)`` and
        ``idx_unshuffle`` (long, shape ``(world_size * N,)``) for
        :func:`batch_unshuffle_ddp`.
    """
    N = x.shape[0]
    x_gather = concat_all_gather(x)  # (world*N, ...)
    N_all = x_gather.shape[0]
    world_size = N_all // N
    idx_shuffle = torch.randperm(N_all, device=x.device)  # world*N
    dist.broadcast(idx_shuffle, src=0)  # the same permutation on all ranks
    idx_unshuffle = torch.argsort(idx_shuffle)  # world*N
    rank = dist.get_rank() if world_size > 1 else 0
    idx_this = idx_shuffle.view(world_size, N)[rank]  # N
    return x_gather[idx_this], idx_unshuffle


@torch.no_grad()
def batch_unshuffle_ddp(
        x: Union[Tensor, Sequence[Tensor]],
        idx_unshuffle: Tensor) -> Union[Tensor, List[Tensor]]:
    """Undo :func:`batch_shuffle_ddp` for one tensor or several at once.

    Several tensors (each ``(N, ...)``) are flattened and concatenated so
    that a single all-gather moves them all; in one process each is just
    permuted (one copy, no packing).

    Args:
        x (Tensor | Sequence[Tensor]): Key-encoder outputs in shuffled order,
            each of shape ``(N, ...)``.
        idx_unshuffle (Tensor): As returned by :func:`batch_shuffle_ddp`.

    Returns:
        Tensor | list[Tensor]: The outputs in the original order of this
        rank's batch, with the input shapes (a list when a sequence was
        given).
    """
    single = isinstance(x, Tensor)
    tensors = [x] if single else list(x)
    if dist.get_world_size() == 1:  # nothing to gather: one copy each
        out = [t.index_select(0, idx_unshuffle) for t in tensors]
        return out[0] if single else out
    N = tensors[0].shape[0]
    shapes = [t.shape[1:] for t in tensors]
    sizes = [t[0].numel() for t in tensors]
    packed = torch.cat([t.reshape(N, -1) for t in tensors], dim=1)  # Nx(sum)
    packed_gather = concat_all_gather(packed)  # (world*N)x(sum)
    world_size = packed_gather.shape[0] // N
    rank = dist.get_rank() if world_size > 1 else 0
    idx_this = idx_unshuffle.view(world_size, N)[rank]  # N
    packed = packed_gather[idx_this]  # Nx(sum)
    out = [p.reshape(N, *s)
           for p, s in zip(packed.split(sizes, dim=1), shapes)]
    return out[0] if single else out
