# Copyright (c) densecl_plugin contributors. All rights reserved.
"""MoCo v2 (Chen et al., 2020), the baseline of DenseCL."""
from typing import List, Optional, Sequence, Tuple, Union

import torch.nn.functional as F
from torch import Tensor, nn

from densecl_plugin.registry import MODELS
from .base import DEFAULT_DATA_PREPROCESSOR, BaseMomentumContrast


@MODELS.register_module(name=['MoCoV2', 'MoCo'])
class MoCoV2(BaseMomentumContrast):
    """MoCo v2: InfoNCE of a query against its momentum key and a queue.

    "Improved Baselines with Momentum Contrastive Learning" (Chen et al.,
    2020, https://arxiv.org/abs/2003.04297), as facebookresearch/moco
    ``builder.py`` with the MLP head, sharing all plumbing with
    :class:`DenseCL` (the same model without the dense loss). Registered
    also as ``MoCo``, the name of mmpretrain's class, so its MoCo v2 configs
    port by changing ``type`` prefixes only.

    Args:
        backbone (dict, optional): Backbone config. Defaults to None
            (ResNet-50 C5 with BN that trains, as :class:`DenseCL`).
        neck (dict, optional): Neck config. Defaults to None:
            ``dict(type='MoCoV2Neck', in_channels=2048, hid_channels=2048,
            out_channels=128)``.
        head (dict, optional): Head config. Defaults to None:
            ``dict(type='ContrastiveHead', temperature=0.2)``.
        queue_len (int): ``K``. Defaults to 65536.
        feat_dim (int): ``D``. Defaults to 128.
        momentum (float): ``m`` in ``k <- m * k + (1 - m) * q`` (paper
            convention). Defaults to 0.999.
        data_preprocessor (dict | nn.Module, optional): Defaults to
            ``dict(type='SelfSupDataPreprocessor')``; None gives MMEngine's
            ``BaseDataPreprocessor``.
        init_cfg (dict, optional): Initialization config. Defaults to None.
        channels_last (bool): Channels-last memory format end to end (see
            :class:`BaseMomentumContrast`). Defaults to False.
        compile_backbone (bool | dict): ``torch.compile`` both backbones
            (see :class:`BaseMomentumContrast`). Defaults to False.
        allow_frozen_bn (bool): Accept a backbone whose BN layers would not
            train (refused otherwise, see :class:`BaseMomentumContrast`).
            Defaults to False.
    """

    def __init__(self,
                 backbone: Optional[dict] = None,
                 neck: Optional[dict] = None,
                 head: Optional[dict] = None,
                 queue_len: int = 65536,
                 feat_dim: int = 128,
                 momentum: float = 0.999,
                 data_preprocessor: Optional[Union[
                     dict, nn.Module]] = DEFAULT_DATA_PREPROCESSOR,
                 init_cfg: Optional[dict] = None,
                 channels_last: bool = False,
                 compile_backbone: Union[bool, dict] = False,
                 allow_frozen_bn: bool = False) -> None:
        if neck is None:
            neck = dict(type='MoCoV2Neck', in_channels=2048,
                        hid_channels=2048, out_channels=feat_dim)
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=head,
            queue_len=queue_len,
            feat_dim=feat_dim,
            momentum=momentum,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg,
            channels_last=channels_last,
            compile_backbone=compile_backbone,
            allow_frozen_bn=allow_frozen_bn)
        self._register_queue('queue')  # DxK keys k

    def _encode_key(self, im_k: Tensor) -> Tuple[Tensor]:
        """The normalised key ``k`` ``(N, D)`` of the (shuffled) key view."""
        return (F.normalize(self.encoder_k(im_k)[0], dim=1), )  # NxD

    def loss(self, inputs: List[Tensor],
             data_samples: Optional[list] = None) -> dict:
        """The MoCo v2 loss of one batch, and the queue update.

        Args:
            inputs (list[Tensor]): Two views ``im_q, im_k``, each ``(N, 3,
                H, W)``.
            data_samples (list, optional): Unused. Defaults to None.

        Returns:
            dict[str, Tensor]: ``loss``.
        """
        im_q, im_k = self._views(inputs, 'MoCoV2')[:2]  # Nx3xHxW each
        q = F.normalize(self.neck(self.backbone(im_q))[0], dim=1)  # NxD
        k, = self._key_forward(im_k)  # NxD
        loss = self.head.loss_queue(q, k, self.queue)
        self._dequeue_and_enqueue(queue=k)
        return dict(loss=loss)

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
