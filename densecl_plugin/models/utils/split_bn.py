# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Split BN: batch norm computed in G groups of the batch, in one process.

MoCo's one-GPU demo mimics shuffle BN with a ``SplitBatchNorm`` that
normalises each of G groups of the batch with its own statistics. Here the
same is done without replacing any module: :func:`split_batchnorm` swaps the
``forward`` of every ``_BatchNorm`` of some modules for the grouped one for
the duration of a ``with`` block, so the parameters, buffers and
``state_dict`` keys are those of the plain model (converters and
checkpoints are unaffected), and eval-mode BN (running statistics) is never
touched.

Groups are *contiguous* chunks of the batch (samples ``g * N/G`` to
``(g + 1) * N/G - 1``), which is what G DDP ranks would each hold, so one
process with G groups and the key batch permuted by
:func:`.key_encoder.batch_shuffle_ddp` computes exactly what G ranks with
shuffle BN compute (tested against real 2-rank gloo DDP).

Running statistics: every group updates a copy of the running mean and
variance from the same start with its own batch statistics (the usual
``(1 - momentum) * running + momentum * batch`` update, unbiased variance),
and the layer keeps the mean of the G copies; ``num_batches_tracked`` grows
by one per forward. That is MoCo's ``SplitBatchNorm``; under DDP each rank
would keep its own group's copy (and ``broadcast_buffers=True`` replaces
them all by rank 0's), so the mean over groups is the average of what the G
ranks hold after the step.
"""
import contextlib
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm


def split_batchnorm_forward(bn: _BatchNorm, x: Tensor, groups: int) -> Tensor:
    """``bn(x)`` with train-mode statistics per contiguous group of ``x``.

    Args:
        bn (_BatchNorm): A BN layer in train mode.
        x (Tensor): Its input, shape ``(N, C, ...)`` with ``N % groups ==
            0``.
        groups (int): The number of groups G.

    Returns:
        Tensor: Shape of ``x``; group ``g`` normalised with its own batch
        statistics (see the module docstring for the running statistics).
    """
    N = x.shape[0]
    if N % groups:
        raise ValueError(f'split BN: a batch of {N} samples does not split '
                         f'into split_bn_groups={groups} equal groups')
    track = bn.track_running_stats and bn.running_mean is not None
    factor = 0.0 if bn.momentum is None else bn.momentum
    if track:
        bn.num_batches_tracked.add_(1)
        if bn.momentum is None:  # cumulative moving average
            factor = 1.0 / float(bn.num_batches_tracked)
    outs, means, variances = [], [], []
    for chunk in x.chunk(groups, dim=0):  # G x (N/G, C, ...)
        rm = bn.running_mean.clone() if track else None  # C
        rv = bn.running_var.clone() if track else None  # C
        outs.append(F.batch_norm(chunk, rm, rv, bn.weight, bn.bias, True,
                                 factor, bn.eps))
        means.append(rm)
        variances.append(rv)
    if track:
        bn.running_mean.copy_(sum(means) / groups)  # C
        bn.running_var.copy_(sum(variances) / groups)  # C
    return _cat(outs, x)


def _cat(outs: Sequence[Tensor], like: Tensor) -> Tensor:
    """Concatenate the groups back, keeping ``like``'s memory format."""
    out = torch.cat(list(outs), dim=0)
    if like.dim() == 4 and like.is_contiguous(
            memory_format=torch.channels_last):
        out = out.contiguous(memory_format=torch.channels_last)
    return out


@contextlib.contextmanager
def split_batchnorm(modules: Sequence[nn.Module],
                    groups: int) -> Iterator[None]:
    """Within the block, train-mode BN of ``modules`` works in G groups.

    Only BN layers in train mode are affected (eval-mode layers use their
    running statistics as usual); with ``groups == 1`` nothing changes.
    The layers' ``forward`` is restored on exit, also on an error.

    Args:
        modules (Sequence[nn.Module]): Where to look for ``_BatchNorm``
            layers (each layer is patched once even if reachable twice).
        groups (int): G >= 1.
    """
    patched = []
    if groups > 1:
        seen = set()
        for module in modules:
            for m in module.modules():
                if isinstance(m, _BatchNorm) and id(m) not in seen:
                    seen.add(id(m))
                    patched.append(m)
                    m.forward = _grouped_forward(m, groups)
    try:
        yield
    finally:
        for m in patched:
            del m.forward  # back to the class's forward


def _grouped_forward(bn: _BatchNorm, groups: int):
    """The instance ``forward`` that :func:`split_batchnorm` installs."""
    plain = type(bn).forward

    def forward(x: Tensor) -> Tensor:
        if not bn.training:
            return plain(bn, x)
        return split_batchnorm_forward(bn, x, groups)

    return forward
