# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Convert a pre-training checkpoint to a torchvision ResNet state dict.

The backbone keys of mmdet/mmseg/mmpretrain's plain ResNet already follow
torchvision's names (see :mod:`.resnet_layout`), so the conversion is:
extract the backbone, drop the classifier, check every key and shape against
the torchvision layout, and save a *flat* ``{name: tensor}`` dict, which is
what ``torchvision.models.resnet50().load_state_dict(sd, strict=False)``
expects (only ``fc.weight`` and ``fc.bias`` are then missing).
"""
import os
from typing import Dict

import torch

from .extract_backbone_weights import load_backbone_weights
from .resnet_layout import check_torchvision_resnet


def torchvision_backbone(src: str) -> Dict[str, torch.Tensor]:
    """The backbone of ``src`` as a checked torchvision-layout state dict.

    Args:
        src (str): a pre-training or extracted checkpoint.

    Returns:
        dict[str, Tensor]: contiguous copies of the backbone tensors (no
        ``fc``), every key and shape checked.

    Raises:
        ValueError: when the backbone is not a torchvision-layout ResNet.
    """
    weights = load_backbone_weights(src)
    state_dict = {k: v.detach().clone().contiguous()
                  for k, v in weights.state_dict.items()}
    check_torchvision_resnet(state_dict, source=f'the backbone of {src!r}')
    return state_dict


def convert_to_torchvision(src: str, dst: str) -> Dict[str, torch.Tensor]:
    """Write the backbone of ``src`` as a torchvision ResNet state dict.

    Args:
        src (str): a pre-training or extracted checkpoint (any layout that
            :func:`~.extract_backbone_weights.extract_backbone_state_dict`
            knows).
        dst (str): the output ``.pth`` file.

    Returns:
        dict[str, Tensor]: the saved state dict.

    Raises:
        ValueError: when the backbone is not a torchvision-layout ResNet
            (e.g. a deep-stem ResNetV1c).
    """
    state_dict = torchvision_backbone(src)
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    torch.save(state_dict, dst)
    return state_dict
