# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Linear evaluation: a linear classifier on a frozen pre-trained backbone.

The MoCo / DenseCL linear protocol (He et al., CVPR 2020; Wang et al.,
CVPR 2021): the pre-trained ResNet is frozen, its last feature map is
globally average-pooled and only a linear layer is trained with
cross-entropy. "Frozen" means all of it, here enforced by the model itself
rather than by a backbone option:

- every backbone parameter has ``requires_grad=False``;
- the backbone runs under ``torch.no_grad()``, so no graph is built through
  it (and no gradient can reach it);
- the backbone stays in eval mode (BatchNorm uses and keeps its running
  statistics) even when the runner calls ``model.train()``.
"""
from typing import Dict, List, Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement

from densecl_plugin.registry import MODELS
from .pretrained_backbone import load_pretrained_backbone


@MODELS.register_module()
class LinearClassifier(BaseModel):
    """Global-average-pooled frozen backbone features and a linear head.

    Args:
        backbone (dict): config of the backbone, e.g. ``dict(type=
            'mmdet.ResNet', depth=50, out_indices=(3, ))``. Its last output
            is pooled.
        num_classes (int): number of classes.
        in_channels (int): channels of the pooled feature (2048 for
            ResNet-50, 512 for ResNet-18).
        pretrained (str, optional): a checkpoint whose backbone weights are
            loaded by :meth:`init_weights`; full pre-training checkpoints
            (``backbone.*``) and extracted ones (bare ResNet keys) both work,
            see :func:`~densecl_plugin.evaluation.load_pretrained_backbone`.
            MMEngine's ``backbone.init_cfg=dict(type='Pretrained', ...)``
            works as well. Defaults to None.
        head_init_std (float): std of the normal init of the linear weights
            (bias 0), as MoCo's ``main_lincls.py``. Defaults to 0.01.
        data_preprocessor (dict, optional): e.g. ``dict(type=
            'ImgDataPreprocessor', mean=..., std=..., bgr_to_rgb=True)``.
            Defaults to None.
        init_cfg (dict, optional): MMEngine init config. Defaults to None.
    """

    def __init__(self,
                 backbone: dict,
                 num_classes: int,
                 in_channels: int,
                 pretrained: Optional[str] = None,
                 head_init_std: float = 0.01,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f'LinearClassifier: num_classes must be an int '
                             f'>= 2, got {num_classes!r}')
        if not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f'LinearClassifier: in_channels must be a '
                             f'positive int, got {in_channels!r}')
        self.backbone = MODELS.build(backbone)
        self.backbone.requires_grad_(False)
        self.head = nn.Linear(in_channels, num_classes)
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.pretrained = pretrained
        self.head_init_std = head_init_std
        self.backbone.eval()

    def init_weights(self) -> None:
        """Init the backbone (its ``init_cfg``), the head, then load
        ``pretrained`` into the backbone."""
        first_time = not self.is_init
        super().init_weights()
        if not first_time:
            return
        nn.init.normal_(self.head.weight, std=self.head_init_std)
        nn.init.zeros_(self.head.bias)
        if self.pretrained:
            load_pretrained_backbone(self.backbone, self.pretrained)

    def train(self, mode: bool = True) -> 'LinearClassifier':
        """Set train mode for the head only; the backbone stays in eval."""
        super().train(mode)
        self.backbone.eval()
        return self

    def extract_feat(self, inputs: torch.Tensor) -> torch.Tensor:
        """Pooled features of the frozen backbone.

        Args:
            inputs (torch.Tensor): ``(N, 3, H, W)`` normalised images.

        Returns:
            torch.Tensor: ``(N, C)``, computed without autograd.
        """
        with torch.no_grad():
            feats = self.backbone(inputs)
            x = feats[-1] if isinstance(feats, (tuple, list)) else feats
            if x.dim() != 4:
                raise ValueError('LinearClassifier expects the backbone to '
                                 'return (N, C, H, W) maps, got shape '
                                 f'{tuple(x.shape)}')
            if x.shape[1] != self.in_channels:
                raise ValueError(
                    f'LinearClassifier: in_channels={self.in_channels} but '
                    f'the backbone gives {x.shape[1]} channels')
            return x.mean(dim=(2, 3))  # (N, C) global average pooling

    def forward(self,
                inputs: torch.Tensor,
                data_samples: Optional[List[BaseDataElement]] = None,
                mode: str = 'tensor'
                ) -> Union[torch.Tensor, Dict[str, torch.Tensor],
                           List[BaseDataElement]]:
        """MMEngine's three modes.

        Args:
            inputs (torch.Tensor): ``(N, 3, H, W)`` from the preprocessor.
            data_samples (list[BaseDataElement], optional): with
                ``gt_label`` (``(1,)`` long tensors) for ``'loss'``.
            mode (str): ``'tensor'`` (logits ``(N, num_classes)``),
                ``'loss'`` (``dict(loss=...)``) or ``'predict'`` (the data
                samples with ``pred_score`` and ``pred_label``).

        Returns:
            Tensor | dict | list: see ``mode``.
        """
        logits = self.head(self.extract_feat(inputs))  # (N, num_classes)
        if mode == 'tensor':
            return logits
        if mode == 'loss':
            if not data_samples:
                raise ValueError("mode='loss' needs data_samples with "
                                 'gt_label')
            gt = torch.cat([ds.gt_label for ds in data_samples])  # (N,)
            return dict(loss=F.cross_entropy(logits, gt.to(logits.device)))
        if mode == 'predict':
            scores = logits.softmax(dim=1)  # (N, num_classes)
            if data_samples is None:
                data_samples = [BaseDataElement() for _ in range(len(scores))]
            for ds, score in zip(data_samples, scores):
                ds.set_field(score, 'pred_score')
                ds.set_field(score.argmax().view(1), 'pred_label')
            return data_samples
        raise ValueError(f"mode must be 'tensor', 'loss' or 'predict', got "
                         f'{mode!r}')
