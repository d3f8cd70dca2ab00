# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The projection neck of MoCo v2."""
from typing import Optional, Sequence, Tuple, Union

from torch import Tensor

from densecl_plugin.registry import MODELS
from densecl_plugin.utils.checks import check_bool
from ..utils.feature_map import last_feature_map
from .densecl_neck import GlobalMLPNeck


@MODELS.register_module()
class MoCoV2Neck(GlobalMLPNeck):
    """MoCo v2 neck: ``avgpool -> Linear -> ReLU -> Linear``, no BN.

    From "Improved Baselines with Momentum Contrastive Learning" (Chen et
    al., 2020, https://arxiv.org/abs/2003.04297). Submodule names follow
    mmpretrain 1.2 checkpoints (``mlp.0``, ``mlp.2``). The branch is
    :class:`GlobalMLPNeck` (shared with :class:`DenseCLNeck`), plus
    mmpretrain's ``with_avg_pool``.

    Args:
        in_channels (int): Channels of the backbone map (2048 for ResNet-50).
        hid_channels (int): Hidden channels.
        out_channels (int): Output dimension ``D``.
        with_avg_pool (bool): Average-pool the map before the MLP. False
            takes an already pooled input ``(N, C)`` or ``(N, C, 1, 1)``
            (mmpretrain's argument). Defaults to True.
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """

    def __init__(self,
                 in_channels: int,
                 hid_channels: int,
                 out_channels: int,
                 with_avg_pool: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        check_bool('MoCoV2Neck', 'with_avg_pool', with_avg_pool)
        super().__init__(in_channels, hid_channels, out_channels, init_cfg)
        self.with_avg_pool = with_avg_pool

    def forward(self, x: Union[Tensor, Sequence[Tensor]]) -> Tuple[Tensor]:
        """Project the last backbone map.

        Args:
            x (Tensor | Sequence[Tensor]): Backbone output; its last map,
                shape ``(N, C, H, W)``, is used (``(N, C)`` or ``(N, C, 1,
                1)`` without ``with_avg_pool``).

        Returns:
            tuple[Tensor]: The unnormalised embedding, shape ``(N, D)``.
        """
        if not self.with_avg_pool:
            x = x[-1] if isinstance(x, (list, tuple)) else x
            if x[0].numel() != self.in_channels:
                raise ValueError(
                    f'MoCoV2Neck: with_avg_pool=False needs pooled features '
                    f'(N, {self.in_channels}) or (N, {self.in_channels}, 1, '
                    f'1), got {tuple(x.shape)}')
            return (self.mlp(x.flatten(1)), )  # NxD
        x = last_feature_map(x, 'MoCoV2Neck', self.in_channels)  # NxCxHxW
        return (self.global_embedding(x), )  # NxD
