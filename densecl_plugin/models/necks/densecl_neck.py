# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The two-branch projection neck of DenseCL, and the global branch it
shares with MoCo v2's neck."""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from densecl_plugin.registry import MODELS
from ..utils.feature_map import last_feature_map

#: cells per copied block when the backward of :class:`_CellMLP` reads the
#: backbone map as cells (8 images of 7 x 7 cells: a 3.2 MiB block at C=2048)
_BLOCK_CELLS = 392


def _cell_mlp(x: Tensor, w1: Tensor, b1: Tensor, w2: Tensor,
              b2: Tensor) -> Tuple[Tensor, Tensor]:
    """``Linear -> ReLU -> Linear`` on the cells of ``x`` ``(N, C, S^2)``
    as two single matrix products over all ``N * S^2`` cells (one copy of
    the cells; ``F.linear`` on the transposed view would run ``N`` batched
    products of ``S^2`` rows instead).

    Returns:
        tuple[Tensor, Tensor]: ``y`` ``(N, S^2, D)`` and the hidden ReLU
        output ``(N * S^2, H)``.
    """
    N, C, S2 = x.shape
    cells = x.transpose(1, 2).reshape(N * S2, C)  # (N*S^2)xC (a copy)
    h = torch.addmm(b1, cells, w1.t())  # (N*S^2)xH
    del cells
    h.relu_()
    y = torch.addmm(b2, h, w2.t())  # (N*S^2)xD
    return y.view(N, S2, -1), h


class _CellMLP(torch.autograd.Function):
    """``Linear -> ReLU -> Linear`` on the cells of ``x`` ``(N, C, S^2)``.

    The same arithmetic as ``F.linear`` on ``x.transpose(1, 2)``, with less
    memory held into backward, where a step's peak lies (at the start of
    backward, while every backbone activation is still alive):

    - ``x`` itself is saved, not its ``(N*S^2, C)`` cells copy (``x`` is the
      backbone's output, kept anyway by its last ReLU): forward makes the
      copy for the first product and frees it, and backward reads the cells
      again in blocks of :data:`_BLOCK_CELLS` rows for the weight gradient;
    - backward runs in blocks of :data:`_BLOCK_CELLS` rows: the hidden
      gradient exists one block at a time, and each block of the input
      gradient is written over the hidden activation's block once its ReLU
      mask has been read (the hidden width equals ``C`` in DenseCL; else a
      new tensor).

    At the peak one ``(N*S^2, C)``-sized tensor and two blocks are live
    beyond MoCo v2's, where ``F.linear`` had three such tensors.
    """

    @staticmethod
    def forward(ctx, x: Tensor, w1: Tensor, b1: Tensor, w2: Tensor,
                b2: Tensor) -> Tensor:
        y, h = _cell_mlp(x, w1, b1, w2, b2)
        ctx.save_for_backward(x, w1, w2)
        ctx.h = h  # not a saved tensor: backward frees it early
        return y  # NxS^2xD

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y: Tensor):
        x, w1, w2 = ctx.saved_tensors
        h = ctx.h  # (N*S^2)xH, the ReLU output
        del ctx.h
        N, C, S2 = x.shape
        M, H = h.shape
        need_x, need_w1, need_b1, need_w2, need_b2 = ctx.needs_input_grad
        gy = grad_y.reshape(M, -1)  # (N*S^2)xD
        gw2 = gy.t().mm(h) if need_w2 else None  # DxH
        gb2 = gy.sum(0) if need_b2 else None  # D
        gw1 = w1.new_zeros(w1.shape) if need_w1 else None  # HxC
        gb1 = w1.new_zeros(H) if need_b1 else None  # H
        # the input gradient takes the place of h, block by block, once a
        # block's ReLU mask is read (when H == C, as in DenseCL)
        gx = None
        if need_x:
            gx = h if H == C and h.dtype == w1.dtype else x.new_empty(M, C)
        rows = max(1, _BLOCK_CELLS // S2) * S2  # whole images per block
        for r in range(0, M, rows):
            gh = gy[r:r + rows].mm(w2)  # bxH
            gh.masked_fill_(h[r:r + rows] <= 0, 0)  # ReLU backward
            if need_b1:
                gb1.add_(gh.sum(0))
            if need_w1:  # gh^T @ cells of these images (a block copy)
                cells = x[r // S2:(r + rows) // S2].transpose(1, 2).reshape(
                    -1, C)  # bxC
                gw1.addmm_(gh.t(), cells)
            if need_x:  # (not mm's out=, which FLOP counters skip)
                gx[r:r + rows] = gh.mm(w1)  # bxC
        del h
        if need_x:  # NxCxS^2, a transposed view of the cells layout
            gx = gx.view(N, S2, C).transpose(1, 2)
        return gx, gw1, gb1, gw2, gb2


class GlobalMLPNeck(BaseModule):
    """``avgpool -> Linear -> ReLU -> Linear``, no BN: the global branch.

    The base of :class:`DenseCLNeck` (this branch plus the dense one) and
    :class:`MoCoV2Neck` (this branch alone), kept here with DenseCL's neck
    so that a DenseCL step reads one neck file. Not registered: it only
    holds the branch once. Its submodules are attributes of the
    neck itself, so the checkpoint keys stay mmpretrain 1.2's and the
    authors' (``mlp.0.*``, ``mlp.2.*``).

    Args:
        in_channels (int): Channels of the backbone map (2048 for ResNet-50).
        hid_channels (int): Hidden channels.
        out_channels (int): Output dimension ``D``.
        init_cfg (dict, optional): Initialization config. Defaults to None
            (PyTorch's default init, as mmpretrain).
    """

    def __init__(self,
                 in_channels: int,
                 hid_channels: int,
                 out_channels: int,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.mlp = nn.Sequential(
            nn.Linear(in_channels, hid_channels), nn.ReLU(inplace=True),
            nn.Linear(hid_channels, out_channels))

    def global_embedding(self, x: Tensor) -> Tensor:
        """The unnormalised global embedding of a backbone map.

        Args:
            x (Tensor): Backbone map, shape ``(N, C, H, W)``.

        Returns:
            Tensor: Shape ``(N, D)``.
        """
        return self.mlp(self.avgpool(x).flatten(1))  # NxD


@MODELS.register_module()
class DenseCLNeck(GlobalMLPNeck):
    """DenseCL neck: a global MLP and a dense 1x1-conv MLP, no BN.

    From "Dense Contrastive Learning for Self-Supervised Visual
    Pre-Training" (Wang et al., CVPR 2021, https://arxiv.org/abs/2011.09157).
    Submodule names follow the authors' code and mmpretrain 1.2 checkpoints
    (``mlp.0``, ``mlp.2``, ``mlp2.0``, ``mlp2.2``).

    - Global branch: ``avgpool -> Linear -> ReLU -> Linear``
      (:class:`GlobalMLPNeck`, shared with :class:`MoCoV2Neck`).
    - Dense branch: optional ``AdaptiveAvgPool2d(num_grid)``, then
      ``Conv1x1 -> ReLU -> Conv1x1`` on every grid cell; ``avgpool2`` of its
      output is the image-level dense vector that DenseCL's second queue
      stores (pooled *before* any L2 normalisation).

    :meth:`forward` returns the three outputs in mmpretrain's layout;
    :meth:`forward_cells` is the one interface :class:`DenseCL` calls (the
    global embedding and the dense branch as cells x dims), so any neck with
    a ``forward_cells`` of that contract works with DenseCL.

    Args:
        in_channels (int): Channels of the backbone map (2048 for ResNet-50).
        hid_channels (int): Hidden channels of both MLPs.
        out_channels (int): Output dimension ``D`` of both branches.
        num_grid (int, optional): Pool the dense branch to ``num_grid x
            num_grid`` cells. Defaults to None (keep the backbone's S x S).
        init_cfg (dict, optional): Initialization config. Defaults to None
            (PyTorch's default init, as mmpretrain).

    Raises:
        ValueError: if ``num_grid`` is not None or a positive int.
    """

    def __init__(self,
                 in_channels: int,
                 hid_channels: int,
                 out_channels: int,
                 num_grid: Optional[int] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if num_grid is not None and (isinstance(num_grid, bool)
                                     or not isinstance(num_grid, int)
                                     or num_grid < 1):
            raise ValueError(f'DenseCLNeck: num_grid must be None or a '
                             f'positive int, got {num_grid!r}')
        super().__init__(in_channels, hid_channels, out_channels, init_cfg)
        self.num_grid = num_grid
        self.pool = (None if num_grid is None else
                     nn.AdaptiveAvgPool2d((num_grid, num_grid)))
        self.mlp2 = nn.Sequential(
            nn.Conv2d(in_channels, hid_channels, 1), nn.ReLU(inplace=True),
            nn.Conv2d(hid_channels, out_channels, 1))
        self.avgpool2 = nn.AdaptiveAvgPool2d((1, 1))

    def forward(self, x: Union[Tensor, Sequence[Tensor]]
                ) -> Tuple[Tensor, Tensor, Tensor]:
        """Project the last backbone map (mmpretrain's outputs).

        Args:
            x (Tensor | Sequence[Tensor]): Backbone output; its last map,
                shape ``(N, C, H, W)``, is used.

        Returns:
            tuple[Tensor, Tensor, Tensor]: ``avgpooled_x`` ``(N, D)`` (global
            branch), ``x`` ``(N, D, S^2)`` (dense branch, ``S = num_grid``
            or ``H = W``) and ``avgpooled_x2`` ``(N, D)`` (the dense branch
            averaged over the grid). None of them is normalised.
        """
        avgpooled_x, x = self.forward_cells(x)  # NxD, NxS^2xD
        return avgpooled_x, x.transpose(1, 2), x.mean(dim=1)  # a view, NxD

    def forward_cells(self, x: Union[Tensor, Sequence[Tensor]]
                      ) -> Tuple[Tensor, Tensor]:
        """The two branches, the dense one as cells x dims: DenseCL's
        interface to its neck.

        Args:
            x (Tensor | Sequence[Tensor]): Backbone output; its last map,
                shape ``(N, C, H, W)``, is used.

        Returns:
            tuple[Tensor, Tensor]: ``avgpooled_x`` ``(N, D)`` and the dense
            branch ``(N, S^2, D)`` (contiguous: one row of D values per
            cell, as DenseCL's dense loss reads them; :meth:`forward`
            returns its transpose, a view), neither normalised.
        """
        x = last_feature_map(x, 'DenseCLNeck', self.in_channels)  # NxCxHxW
        if self.pool is not None and self.num_grid > min(x.shape[2:]):
            raise ValueError(
                f'DenseCLNeck: num_grid={self.num_grid} is larger than the '
                f'backbone feature map {tuple(x.shape[2:])}; use a smaller '
                f'num_grid or larger inputs')
        return self.global_embedding(x), self.dense_embedding(x)

    def dense_embedding(self, x: Tensor) -> Tensor:
        """The unnormalised dense branch of a backbone map.

        Args:
            x (Tensor): Backbone map, shape ``(N, C, H, W)``.

        Returns:
            Tensor: ``(N, S^2, D)``, contiguous.
        """
        if self.pool is not None:
            x = self.pool(x)  # NxCxSxS
        return self._cellwise_mlp2(x.flatten(2).transpose(1, 2))  # NxS^2xD

    def _cellwise_mlp2(self, h: Tensor) -> Tensor:
        """``mlp2`` on cells ``(N, S^2, C)`` as matrix products.

        The 1x1 convolutions keep their parameters (and checkpoint keys)
        but run as ``F.linear`` over all cells: the same arithmetic, and
        about 1.5x faster than ``conv2d`` for the dense head's shapes on a
        CPU. The output ``(N, S^2, D)`` transposes to ``(N, D, S^2)`` as a
        view whose rows, per cell, are contiguous, as DenseCL's dense loss
        reads them. With gradients (and no autocast) the three layers run as
        one :class:`_CellMLP`, which holds less memory into backward.
        """
        first, act, last = (tuple(self.mlp2) + (None, None, None))[:3]
        fused = (len(self.mlp2) == 3 and isinstance(first, nn.Conv2d)
                 and isinstance(act, nn.ReLU)
                 and isinstance(last, nn.Conv2d)
                 and first.bias is not None and last.bias is not None
                 and not torch.is_autocast_enabled(h.device.type))
        if fused:  # the same arithmetic as the loop below
            args = (h.transpose(1, 2), first.weight.flatten(1), first.bias,
                    last.weight.flatten(1), last.bias)
            if torch.is_grad_enabled():  # less memory into backward
                return _CellMLP.apply(*args)
            return _cell_mlp(*args)[0]  # the key encoder
        for layer in self.mlp2:
            if isinstance(layer, nn.Conv2d):
                h = F.linear(h, layer.weight.flatten(1), layer.bias)
            else:
                h = layer(h)
        return h
