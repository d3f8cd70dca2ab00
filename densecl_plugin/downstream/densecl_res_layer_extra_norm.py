# Copyright (c) densecl_plugin contributors. All rights reserved.
"""``DenseCLResLayerExtraNorm``: the C4 RoI shared head with a norm after res5.

The MoCo / DenseCL detection protocol (detectron2 ``Res5ROIHeadsExtraNorm``,
MoCo ``detection/train_net.py``) adds a normalisation layer after ``res5``
of the C4 RoI head, because a self-supervised backbone's ``res5`` outputs
are not scaled like a supervised one's. This is mmdet's ``ResLayer`` shared
head plus that layer (``extra_norm``, a fresh norm: weight 1, bias 0, which
is also what ``ResLayer``'s default init sets; it is not
part of pre-training, so the benchmark configs list it in
``DenseCLPretrained(allow_missing=...)``).

It is registered in **mmdet's** ``MODELS`` (the only way an mmdet config can
build it), under a ``DenseCL`` name that cannot collide with mmselfsup's or
mmpretrain's ``ResLayerExtraNorm``.
"""
from typing import Optional

import torch
from mmcv.cnn import build_norm_layer
from mmdet.models.roi_heads.shared_heads import ResLayer
from mmdet.registry import MODELS


@MODELS.register_module()
class DenseCLResLayerExtraNorm(ResLayer):
    """mmdet's ``ResLayer`` shared head followed by a norm layer.

    Args:
        depth (int): ResNet depth (50 or 101 for the C4 benchmarks).
        stage (int): the ResNet stage this head runs (3 = ``layer4``).
            Defaults to 3.
        norm_cfg (dict): norm layer of the blocks and of ``extra_norm``.
            Defaults to ``dict(type='BN', requires_grad=True)``.
        **kwargs: the other arguments of mmdet's ``ResLayer`` (``stride``,
            ``dilation``, ``style``, ``norm_eval``, ``init_cfg`` ...).
    """

    def __init__(self,
                 depth: int,
                 stage: int = 3,
                 norm_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        norm_cfg = norm_cfg or dict(type='BN', requires_grad=True)
        super().__init__(depth, stage=stage, norm_cfg=norm_cfg, **kwargs)
        block = getattr(self, f'layer{stage + 1}')[-1]
        out_channels = block.conv3.out_channels if hasattr(block, 'conv3') \
            else block.conv2.out_channels  # 2048 for ResNet-50 layer4
        self.extra_norm = build_norm_layer(norm_cfg, out_channels)[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the stage, then the extra norm.

        Args:
            x (Tensor): RoI features, (R, C_in, h, w).

        Returns:
            Tensor: (R, C_out, h / stride, w / stride).
        """
        x = super().forward(x)  # R x 2048 x 7 x 7 for R50 res5 on 14x14 RoIs
        return self.extra_norm(x)  # R x 2048 x 7 x 7
