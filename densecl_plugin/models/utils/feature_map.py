# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Validation of backbone outputs shared by the necks and the algorithms."""
from typing import Optional, Sequence, Union

from torch import Tensor


def last_feature_map(feats: Union[Tensor, Sequence[Tensor]], who: str,
                     in_channels: Optional[int] = None) -> Tensor:
    """Return the last (deepest) ``(N, C, H, W)`` map of a backbone output.

    Args:
        feats (Tensor | Sequence[Tensor]): What the backbone returned: a
            tensor or a tuple/list of tensors (mmdet/mmseg backbones return a
            tuple, one map per ``out_indices`` entry).
        who (str): The caller, named in error messages.
        in_channels (int, optional): The number of channels the caller was
            configured for. Defaults to None (not checked).

    Returns:
        Tensor: ``feats[-1]`` (or ``feats``), shape ``(N, C, H, W)``.

    Raises:
        ValueError: if the output is empty, not 4-D, or has the wrong number
            of channels.
    """
    x = feats
    if isinstance(feats, (tuple, list)):
        if len(feats) == 0:
            raise ValueError(f'{who}: the backbone returned an empty '
                             f'{type(feats).__name__}; expected one or more '
                             f'(N, C, H, W) feature maps')
        x = feats[-1]
    if not isinstance(x, Tensor) or x.dim() != 4:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(
            f'{who} needs a 4-D (N, C, H, W) feature map as the last backbone '
            f'output, got {got}. Use a convolutional backbone that returns '
            f'spatial maps (e.g. mmdet.ResNet with out_indices=(3,)); '
            f'transformer backbones must reshape tokens to a grid first.')
    if in_channels is not None and x.shape[1] != in_channels:
        raise ValueError(
            f'{who} was configured with in_channels={in_channels}, but the '
            f'backbone feature map has {x.shape[1]} channels (shape '
            f'{tuple(x.shape)}); set in_channels to the backbone output '
            f'channels (512 for ResNet-18/34, 2048 for ResNet-50/101 C5).')
    return x
