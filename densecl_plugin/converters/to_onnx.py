# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Export the backbone of a pre-training checkpoint to ONNX.

The backbone is rebuilt from the weights alone (the depth is read off the
keys, :mod:`.resnet_layout`): mmdet's plain ``ResNet`` -- the network the
pre-training ran -- in eval mode (BN uses its running statistics), loaded
strictly. The exported graph::

    image  float32 (N, 3, H, W)  RGB, normalised: (pixel - mean) / std
    c5     float32 (N, C, ceil(H/32), ceil(W/32))  the last stage's map
           (C = 512 for ResNet-18/34, 2048 for 50/101/152)
    pooled float32 (N, C)  c5 averaged over its cells (the global feature)

``N``, ``H`` and ``W`` are dynamic (``H``, ``W`` at least 32). The
normalisation is not in the graph, as with the torchvision and timm
exports; the file's metadata (``metadata_props``) says which: the
pre-training configs' ImageNet ``mean`` and ``std`` on the 0-255 scale, RGB.

The export uses ``torch.onnx.export(..., dynamo=True)``, the torch.export
based exporter that torch 2.9+ makes the default (it needs ``onnx`` and
``onnxscript``; it runs offline). The older TorchScript exporter
(``dynamo=False``) still works on torch 2.13 but warns that it will be
removed.
"""
import os
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor, nn

from .resnet_layout import check_torchvision_resnet
from .to_torchvision import torchvision_backbone

#: the graph's input and output names
INPUT_NAME = 'image'
OUTPUT_NAMES = ('c5', 'pooled')


class BackboneFeatures(nn.Module):
    """The exported graph: a normalised image -> its C5 map and their mean.

    Args:
        backbone (nn.Module): a backbone whose last output is C5.
    """

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, image: Tensor) -> Tuple[Tensor, Tensor]:
        """Return ``(c5, pooled)`` of shapes ``(N, C, h, w)``, ``(N, C)``."""
        c5 = self.backbone(image)[-1]
        return c5, c5.mean(dim=(2, 3))


def build_resnet_backbone(state_dict: Dict[str, Tensor],
                          source: str = 'weights') -> nn.Module:
    """mmdet's plain ResNet of the weights' depth, loaded, in eval mode.

    Args:
        state_dict (dict[str, Tensor]): torchvision-layout backbone weights
            (``num_batches_tracked`` may be absent).
        source (str): a name for error messages. Defaults to ``'weights'``.

    Returns:
        nn.Module: ``mmdet.models.backbones.ResNet`` with
        ``out_indices=(3, )``.
    """
    from mmdet.models.backbones import ResNet
    depth = check_torchvision_resnet(state_dict, source=source)
    net = ResNet(depth, out_indices=(3, ), style='pytorch',
                 norm_cfg=dict(type='BN'), norm_eval=True)
    missing, unexpected = net.load_state_dict(state_dict, strict=False)
    missing = [k for k in missing if not k.endswith('num_batches_tracked')]
    if missing or unexpected:  # check_torchvision_resnet rules this out
        raise ValueError(f'{source} does not fit mmdet ResNet-{depth}: '
                         f'missing {missing[:8]}, unexpected '
                         f'{unexpected[:8]}')
    net.eval()  # mmdet's ResNet.train() returns None: no chaining
    return net


@dataclass(frozen=True)
class OnnxExport:
    """What :func:`convert_to_onnx` wrote.

    Attributes:
        path (str): The ``.onnx`` file.
        depth (int): The ResNet depth.
        channels (int): ``C`` of ``c5`` and ``pooled``.
        opset (int): The ONNX opset of the default domain.
        num_tensors (int): Backbone tensors read from the checkpoint.
    """
    path: str
    depth: int
    channels: int
    opset: int
    num_tensors: int


def convert_to_onnx(src: str, dst: str, example_size: int = 224,
                    opset_version: Optional[int] = None) -> OnnxExport:
    """Write the backbone of ``src`` as an ONNX graph (see the module doc).

    Args:
        src (str): a pre-training or extracted checkpoint (any layout that
            :func:`~.extract_backbone_weights.extract_backbone_state_dict`
            knows).
        dst (str): the output ``.onnx`` file.
        example_size (int): side of the example input the graph is traced
            with (the exported sizes stay dynamic). Defaults to 224.
        opset_version (int, optional): the ONNX opset. Defaults to None
            (torch's default for the exporter).

    Returns:
        OnnxExport: the file, depth, channels and opset.

    Raises:
        ValueError: when the backbone is not a torchvision-layout ResNet.
        ImportError: when ``onnx`` or ``onnxscript`` is missing.
    """
    from densecl_plugin.models.data_preprocessor import (IMAGENET_MEAN,
                                                         IMAGENET_STD)
    for name in ('onnx', 'onnxscript'):
        try:
            __import__(name)
        except ImportError as err:
            raise ImportError(
                f'the ONNX export needs {name}: pip install onnx onnxscript '
                '(and onnxruntime to run the file)') from err
    import onnx
    state_dict = torchvision_backbone(src)
    backbone = build_resnet_backbone(state_dict, f'the backbone of {src!r}')
    net = BackboneFeatures(backbone).eval()
    batch = torch.export.Dim('batch', min=1)
    height = torch.export.Dim('height', min=32)
    width = torch.export.Dim('width', min=32)
    example = torch.zeros(2, 3, example_size, example_size)
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            net, (example, ), dst, dynamo=True, verbose=False,
            input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
            dynamic_shapes={'image': {0: batch, 2: height, 3: width}},
            opset_version=opset_version, external_data=False)
    model = onnx.load(dst)
    meta = dict(source=os.path.basename(src), architecture=(
        f'ResNet-{backbone.depth} (mmdet, style=pytorch), eval-mode BN'),
        input=f'{INPUT_NAME}: float32 (N, 3, H, W), RGB, (pixel - mean) / '
              'std on the 0-255 scale',
        mean=','.join(map(str, IMAGENET_MEAN)),
        std=','.join(map(str, IMAGENET_STD)),
        outputs='c5: (N, C, ceil(H/32), ceil(W/32)); pooled: (N, C), c5 '
                'averaged')
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = 'densecl_plugin'
    onnx.save(model, dst)
    opset = next(o.version for o in model.opset_import if o.domain in ('',
                                                                       'ai.onnx'))
    channels = backbone.feat_dim
    return OnnxExport(dst, backbone.depth, channels, opset, len(state_dict))
