# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The key side of momentum contrast (MoCo, DenseCL): the momentum key
encoder, the batch shuffle of shuffle BN, and the queues the keys of all
ranks enter.

- :class:`MomentumEncoder`: the key encoder, ``k <- m * k + (1 - m) * q``;
- :func:`batch_shuffle_ddp` / :func:`batch_unshuffle_ddp`: shuffle the key
  batch across ranks before the key encoder and undo it after;
- :func:`concat_all_gather` and :func:`enqueue_`: the keys of all ranks,
  written into a ring-buffer queue.

The collectives run on top of :mod:`mmengine.dist` and also work without an
initialised process group (one GPU, the CPU, a test): ``mmengine.dist`` then
gathers only the local tensor and broadcasts nothing, so
:func:`batch_shuffle_ddp` becomes a *local* permutation of the batch. That
keeps the code path identical, but note what it means for "shuffle BN": with
a single process the batch-norm statistics of the key encoder are computed
over the same samples as without the shuffle, so it cannot hide information
between the two views; only under DDP does the shuffle move samples across
ranks (and so across BN batches).
"""
import copy
import warnings
from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmengine import dist
from torch import Tensor, nn


class MomentumEncoder(nn.Module):
    """A momentum copy of the query encoder: ``k <- m * k + (1 - m) * q``.

    ``momentum`` follows the paper (MoCo, DenseCL): it is the weight of the
    *old* key parameters, ``m = 0.999`` by default. mmpretrain 1.x and
    MMEngine's ``ExponentialMovingAverage`` write the inverse: there
    ``momentum=0.001`` is the weight of the *query* and means the same update.
    A value below 0.5 would keep less than half of the key encoder per step,
    which no momentum-contrast recipe does, so it is read in that convention
    (``m = 1 - momentum``) with a warning: an mmpretrain DenseCL / MoCo config
    keeps its ``momentum=0.001`` and trains as it did there.

    The state-dict layout is that of mmpretrain 1.2 checkpoints: the copied
    module under ``module.*`` (for ``nn.Sequential(backbone, neck)``:
    ``module.0.*`` and ``module.1.*``) and the update counter ``steps``.

    The first :meth:`update` (``steps == 0``) copies the query parameters, so
    the copy happens *after* the query's ``init_weights`` (which the runner
    calls after construction) rather than at construction. Only parameters
    are averaged: the key encoder keeps its own buffers, e.g. BN running
    statistics updated by its own forward passes, as MoCo's key encoder does.

    Args:
        model (nn.Module): The query encoder; it is deep-copied and the copy
            gets ``requires_grad=False``.
        momentum (float): ``m`` in ``k <- m * k + (1 - m) * q``, in (0, 1);
            below 0.5 it is mmpretrain's ``1 - m`` (see above). Defaults to
            0.999.

    Raises:
        ValueError: if ``momentum`` is not in the open interval (0, 1).
    """

    def __init__(self, model: nn.Module, momentum: float = 0.999) -> None:
        super().__init__()
        if not isinstance(momentum, (int, float)) or not 0 < momentum < 1:
            raise ValueError(
                f'momentum must be in the open interval (0, 1) (paper '
                f'convention k <- m*k + (1-m)*q, e.g. 0.999), '
                f'got {momentum!r}')
        if momentum < 0.5:
            warnings.warn(
                f'MomentumEncoder: momentum={momentum} is read in '
                f"mmpretrain's inverted convention (the weight of the query, "
                f'as MMEngine\'s ExponentialMovingAverage): the key encoder '
                f'is updated k <- {1 - momentum:g} * k + {momentum:g} * q. '
                f'Write momentum={1 - momentum:g} (the paper convention) to '
                f'silence this.', UserWarning, stacklevel=2)
            momentum = 1.0 - momentum
        self.m = float(momentum)
        self.module = copy.deepcopy(model)
        self.module.requires_grad_(False)
        self.register_buffer('steps', torch.zeros((), dtype=torch.long))
        # host-side copy of ``steps > 0``: None until read (once, or again
        # after a state dict is loaded), so that updates after the first do
        # not read the buffer on the host (a device synchronisation)
        self._started: Optional[bool] = None

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        self._started = None  # ``steps`` may change
        super()._load_from_state_dict(*args, **kwargs)

    def forward(self, *args, **kwargs):
        """Run the key encoder (``self.module``)."""
        return self.module(*args, **kwargs)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Update the key parameters from the query encoder ``model``.

        ``model`` must have the parameters of the copied module in the same
        order (e.g. ``nn.Sequential(backbone, neck)``). The first call copies
        them; later calls do ``k <- m * k + (1 - m) * q`` in one fused
        ``torch._foreach_lerp_`` over all parameters.

        Args:
            model (nn.Module): The query encoder.

        Raises:
            ValueError: if the parameter shapes of ``model`` and the key
                encoder do not match.
        """
        params_k = list(self.module.parameters())
        params_q = [p.detach() for p in model.parameters()]
        if self._started is None:
            self._started = bool(self.steps > 0)
        if not self._started:
            if [p.shape for p in params_k] != [p.shape for p in params_q]:
                raise ValueError(
                    'MomentumEncoder.update: the query encoder does not have '
                    f'the parameters of the key encoder ({len(params_q)} vs '
                    f'{len(params_k)} tensors, or different shapes)')
            torch._foreach_copy_(params_k, params_q)
        else:
            torch._foreach_lerp_(params_k, params_q, 1.0 - self.m)
        self._started = True
        self.steps += 1


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
