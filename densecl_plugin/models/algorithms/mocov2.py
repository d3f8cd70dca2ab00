# Copyright (c) densecl_plugin contributors. All rights reserved.
"""MoCo v2 (Chen et al., 2020), the baseline of DenseCL."""
from typing import List, Optional, Sequence, Tuple, Union

import torch.nn.functional as F
from torch import Tensor, nn

from densecl_plugin.registry import MODELS
from .base import BaseMomentumContrast


@MODELS.register_module(name=['MoCoV2', 'MoCo'])
class MoCoV2(BaseMomentumContrast):
    """MoCo v2: InfoNCE of a query against its momentum key and a queue.

    "Improved Baselines with Momentum Contrastive Learning" (Chen et al.,
    2020, https://arxiv.org/abs/2003.04297), as facebookresearch/moco
    ``builder.py`` with the MLP head, sharing all plumbing with
    :class:`DenseCL` (the same model without the dense loss). Registered
    also as ``MoCo``, the name of mmpretrain's class, so its MoCo v2 configs
    port by changing ``type`` prefixes only.

    Every constructor argument, with its default, is that of
    :class:`BaseMomentumContrast` (ResNet-50 C5 with BN that trains, ``K =
    65536``, ``D = 128``, ``m = 0.999``, ``T = 0.2``); only the default neck
    (:attr:`DEFAULT_NECK`) and the one queue are MoCo v2's own.

    Args:
        neck (dict, optional): Neck config. Defaults to None:
            ``dict(type='MoCoV2Neck', in_channels=2048, hid_channels=2048,
            out_channels=feat_dim)``.
        backbone, head, queue_len, feat_dim, momentum, data_preprocessor,
            init_cfg, channels_last, compile_backbone, allow_frozen_bn,
            split_bn_groups, health_interval: As
            :class:`BaseMomentumContrast`, with its defaults.
    """

    DEFAULT_NECK = dict(type='MoCoV2Neck', in_channels=2048,
                        hid_channels=2048)
    QUEUES = ('queue', )  # DxK keys k

    def encode(self, backbone: nn.Module, neck: nn.Module,
               im: Tensor) -> Tuple[Tensor]:
        """The L2-normalised embedding ``(N, D)`` of the view ``im`` by one
        encoder (the query's or the key encoder's)."""
        return (F.normalize(neck(backbone(im))[0], dim=1), )  # NxD

    def loss(self, inputs: List[Tensor],
             data_samples: Optional[list] = None) -> dict:
        """The MoCo v2 loss of one batch, and the queue update.

        Args:
            inputs (list[Tensor]): Two views ``im_q, im_k``, each ``(N, 3,
                H, W)``.
            data_samples (list, optional): Unused. Defaults to None.

        Returns:
            dict[str, Tensor]: ``loss``; on health iterations also the
            ``health_*`` metrics (see ``health_interval``).
        """
        im_q, im_k = self._views(inputs, 'MoCoV2')[:2]  # Nx3xHxW each
        q, = self.encode(self.backbone, self.neck, im_q)  # NxD: queries
        k, = self.key_forward(im_k)  # NxD: keys, no gradient
        loss = self.head.loss_queue(q, k, self.queue)  # InfoNCE, scalar
        losses = dict(loss=loss, **self.diagnostics(q, k))  # before enqueue
        self._dequeue_and_enqueue(queue=k)
        return losses

    def predict(self, inputs: Union[Tensor, Sequence[Tensor]],
                data_samples: Optional[list] = None):
        """The L2-normalised embedding ``q`` ``(N, D)`` of the (first) view.

        With ``data_samples``, each sample gets a field ``embedding`` of
        shape ``(D,)`` and the samples are returned.
        """
        q = F.normalize(self.neck(self.extract_feat(inputs))[0], dim=1)  # NxD
        if data_samples is None:
            return q
        for sample, emb in zip(data_samples, q):
            sample.set_field(emb, 'embedding')
        return data_samples
