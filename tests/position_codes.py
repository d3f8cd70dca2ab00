# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Test reference features that *are* cell positions: a perfect matcher.

:func:`position_codes` gives every cell of a view the Fourier code of where
its centre lies in the loaded image, so matching them by cosine argmax finds
the geometric partner: a known answer for testing the matchers, the metric
and the figures of :mod:`densecl_plugin.models.utils.correspondence` and
:mod:`densecl_plugin.visualization`. Only the tests use them.
"""
import math

import torch
from torch import Tensor

from densecl_plugin.models.utils.correspondence import (GridSize, cell_centers,
                                                        to_hw, view_to_image)


def fourier_position_encoding(xy: Tensor, num_freq: int = 4,
                              extent: float = 4096.) -> Tensor:
    """Encode image positions so that cosine similarity ranks by distance.

    ``[cos(w x), sin(w x), cos(w y), sin(w y)]`` for ``num_freq`` frequencies
    ``w_f = pi / (2 extent) 2^-f``. Two codes' dot product is
    ``sum_f cos(w_f dx) + cos(w_f dy)`` and all codes have the same norm, so
    their cosine similarity is strictly decreasing in ``|dx|`` and ``|dy|``
    while both are below ``extent``: over a grid of cell centres (a product
    of x and y values) the argmax is the nearest centre in each axis.

    Args:
        xy (Tensor): ``(..., 2)`` positions ``(x, y)`` in pixels.
        num_freq (int): Defaults to 4.
        extent (float): Larger than any distance to encode, in pixels.
            Defaults to 4096.

    Returns:
        Tensor: ``(..., 4 * num_freq)``.
    """
    w = math.pi / (2 * extent) * 2.0 ** -torch.arange(
        num_freq, dtype=xy.dtype, device=xy.device)  # (F,)
    ang = xy[..., None] * w  # (..., 2, F)
    return torch.cat([ang.cos(), ang.sin()], dim=-1).flatten(-2)  # (..., 4F)


def position_codes(bbox: Tensor, flip: Tensor, grid_size: GridSize,
                   num_freq: int = 4, extent: float = 4096.) -> Tensor:
    """Features that *are* the image position of each cell: a perfect matcher.

    :func:`fourier_position_encoding` of where each cell centre of each view
    lies in the loaded image. The cosine argmax over a key grid is then the
    key cell centre nearest in each axis, which is the key cell that covers
    the point, so :func:`correspondence_accuracy` of these features is 1.0: a
    reference for testing matchers and the metric.

    Args:
        bbox (Tensor): ``(N, 4)`` crop boxes ``(x1, y1, x2, y2)``.
        flip (Tensor): ``(N,)`` bool.
        grid_size (int | Sequence[int]): ``S`` or ``(S_h, S_w)``.
        num_freq (int): Defaults to 4.
        extent (float): Larger than any image side in pixels.
            Defaults to 4096.

    Returns:
        Tensor: ``(N, 4 * num_freq, S_h, S_w)`` float64 feature maps.
    """
    S_h, S_w = to_hw(grid_size)
    bbox = bbox.to(torch.float64)
    xy = view_to_image(cell_centers(grid_size, bbox.device, bbox.dtype), bbox,
                       flip)  # (N, S², 2)
    code = fourier_position_encoding(xy, num_freq, extent)  # (N, S², 4F)
    return code.transpose(1, 2).reshape(bbox.shape[0], -1, S_h, S_w)
