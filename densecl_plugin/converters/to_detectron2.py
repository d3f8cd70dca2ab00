# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Convert a pre-training checkpoint to a detectron2 ResNet ``.pkl``.

detectron2's ``ResNet`` names the stem ``stem.conv1`` (with its BN at
``stem.conv1.norm``), the stages ``res2`` .. ``res5``, a block's BN
``convK.norm`` and the projection ``shortcut`` / ``shortcut.norm``. The file
is a pickle of ``{'model': {name: numpy array}, '__author__': ...,
'matching_heuristics': True}``, the format of MoCo's
``convert-pretrain-to-detectron2.py`` that DenseCL's detection benchmark
uses; detectron2's ``DetectionCheckpointer`` reads it with name matching.
Use it with ``MODEL.WEIGHTS out.pkl``, ``MODEL.PIXEL_MEAN [123.675, 116.280,
103.530]``, ``MODEL.PIXEL_STD [58.395, 57.120, 57.375]``, ``INPUT.FORMAT
RGB`` and ``MODEL.RESNETS.STRIDE_IN_1X1 False`` (torchvision puts the stride
in the 3x3 conv).

BN ``num_batches_tracked`` counters are dropped: detectron2's BN layers
(``FrozenBatchNorm2d``, ``NaiveSyncBatchNorm``) do not use them.
"""
import os
import pickle
import re
from typing import Dict

import numpy as np

from .extract_backbone_weights import load_backbone_weights
from .resnet_layout import check_torchvision_resnet

#: author tag written into the pickle
AUTHOR = 'densecl_plugin'

_STEM = re.compile(r'^(conv1|bn1)\.(\w+)$')
_BLOCK = re.compile(r'^layer([1-4])\.(\d+)\.(conv|bn)([1-3])\.(\w+)$')
_SHORTCUT = re.compile(r'^layer([1-4])\.(\d+)\.downsample\.([01])\.(\w+)$')


def torchvision_to_detectron2_key(key: str) -> str:
    """Map one torchvision ResNet key to detectron2's name.

    Args:
        key (str): e.g. ``'layer1.0.bn2.running_mean'``.

    Returns:
        str: e.g. ``'res2.0.conv2.norm.running_mean'``.

    Raises:
        KeyError: for a key that is not part of a torchvision ResNet backbone.
    """
    m = _STEM.match(key)
    if m:
        layer, attr = m.groups()
        return f'stem.conv1.{attr}' if layer == 'conv1' \
            else f'stem.conv1.norm.{attr}'
    m = _BLOCK.match(key)
    if m:
        stage, j, kind, k, attr = m.groups()
        norm = '.norm' if kind == 'bn' else ''
        return f'res{int(stage) + 1}.{j}.conv{k}{norm}.{attr}'
    m = _SHORTCUT.match(key)
    if m:
        stage, j, idx, attr = m.groups()
        norm = '.norm' if idx == '1' else ''
        return f'res{int(stage) + 1}.{j}.shortcut{norm}.{attr}'
    raise KeyError(f'{key!r} is not a torchvision ResNet backbone key')


def convert_to_detectron2(src: str, dst: str) -> Dict[str, np.ndarray]:
    """Write the backbone of ``src`` as a detectron2 ``.pkl``.

    Args:
        src (str): a pre-training or extracted checkpoint.
        dst (str): the output ``.pkl`` file.

    Returns:
        dict[str, numpy.ndarray]: the ``'model'`` entry that was written.
    """
    weights = load_backbone_weights(src)
    check_torchvision_resnet(weights.state_dict,
                             source=f'the backbone of {src!r}')
    model = {torchvision_to_detectron2_key(k): v.detach().cpu().numpy()
             for k, v in weights.state_dict.items()
             if not k.endswith('num_batches_tracked')}
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    with open(dst, 'wb') as f:
        pickle.dump(dict(model=model, __author__=AUTHOR,
                         matching_heuristics=True), f)
    return model
