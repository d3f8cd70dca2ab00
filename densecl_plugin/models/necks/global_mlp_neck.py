# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The global projection branch that both momentum-contrast necks share."""
from typing import Optional

from mmengine.model import BaseModule
from torch import Tensor, nn

from ..utils.profiling import region


class GlobalMLPNeck(BaseModule):
    """``avgpool -> Linear -> ReLU -> Linear``, no BN: the global branch.

    The base of :class:`MoCoV2Neck` (this branch alone) and
    :class:`DenseCLNeck` (this branch plus the dense one). Not registered:
    it only holds the branch once. Its submodules are attributes of the
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
        with region('neck.global'):
            return self.mlp(self.avgpool(x).flatten(1))  # NxD
