# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Convert a pre-training checkpoint to a timm ResNet state dict.

timm's ``resnet18`` .. ``resnet152`` (``timm.models.resnet.ResNet``, the
plain 7x7 stem, stride in the 3x3 conv) name their backbone tensors exactly
like torchvision's: ``conv1``, ``bn1``, ``layer{1..4}.{j}.conv{k}`` /
``bn{k}``, ``downsample.{0,1}``; only the classifier ``fc`` differs in use.
So the conversion is the torchvision one (:mod:`.to_torchvision`: extract,
drop the classifier, check every key and shape), written as a file that
timm's own loader reads strictly::

    model = timm.create_model('resnet50', num_classes=0,
                              checkpoint_path='out.safetensors')

``num_classes=0`` makes ``fc`` an ``Identity``, so the strict load finds
exactly the file's keys. A ``.safetensors`` ``DST`` is written with
``safetensors`` (installed with timm); any other name with ``torch.save``
(timm reads both).
"""
import os
from typing import Dict

import torch

from .resnet_layout import infer_resnet_depth
from .to_torchvision import torchvision_backbone


def timm_model_name(state_dict: Dict[str, torch.Tensor]) -> str:
    """The timm model whose backbone ``state_dict`` fits, e.g. ``'resnet50'``.

    Args:
        state_dict (dict[str, Tensor]): torchvision-layout backbone weights.

    Returns:
        str: ``'resnet{depth}'``.
    """
    return f'resnet{infer_resnet_depth(state_dict)}'


def convert_to_timm(src: str, dst: str) -> Dict[str, torch.Tensor]:
    """Write the backbone of ``src`` as a timm ResNet state dict.

    Args:
        src (str): a pre-training or extracted checkpoint (any layout that
            :func:`~.extract_backbone_weights.extract_backbone_state_dict`
            knows).
        dst (str): the output file: ``.safetensors`` (safetensors format) or
            anything else (``torch.save``, e.g. ``.pth``).

    Returns:
        dict[str, Tensor]: the saved state dict.

    Raises:
        ValueError: when the backbone is not a plain ResNet (e.g. a deep-stem
            ResNetV1c, timm's ``resnet50c``-like stems are not produced).
        ImportError: for a ``.safetensors`` ``dst`` without ``safetensors``.
    """
    state_dict = torchvision_backbone(src)
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    if dst.endswith('.safetensors'):
        try:
            from safetensors.torch import save_file
        except ImportError as err:
            raise ImportError(
                f'writing {dst!r} needs safetensors (pip install timm, or '
                'pip install safetensors), or give DST another extension '
                '(.pth) for torch.save') from err
        save_file(state_dict, dst, metadata={
            'format': 'pt', 'timm_model': timm_model_name(state_dict)})
    else:
        torch.save(state_dict, dst)
    return state_dict
