# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The torchvision ResNet key layout, and checks that weights follow it.

mmdet's and mmseg's plain ``ResNet`` (``style='pytorch'``, 7x7 stem, no
``deep_stem``) name their parameters exactly like torchvision's
``torchvision.models.resnet``: ``conv1``, ``bn1``,
``layer{1..4}.{j}.conv{1..3}``, ``bn{1..3}``, ``downsample.{0,1}``. This
module describes that layout (names and shapes) from the architecture table
alone, without importing either library, so a converted file can be checked
before anyone loads it.
"""
import re
from typing import Any, Dict, Mapping, Tuple

#: depth -> (block type, blocks per stage), as in torchvision / mmdet
RESNET_ARCHS: Dict[int, Tuple[str, Tuple[int, int, int, int]]] = {
    18: ('basic', (2, 2, 2, 2)),
    34: ('basic', (3, 4, 6, 3)),
    50: ('bottleneck', (3, 4, 6, 3)),
    101: ('bottleneck', (3, 4, 23, 3)),
    152: ('bottleneck', (3, 8, 36, 3)),
}
_EXPANSION = {'basic': 1, 'bottleneck': 4}
_BN_STATS = ('weight', 'bias', 'running_mean', 'running_var',
             'num_batches_tracked')
_BLOCK_KEY = re.compile(r'^layer([1-4])\.(\d+)\.')


def _bn(name: str, channels: int) -> Dict[str, Tuple[int, ...]]:
    return {f'{name}.{s}': (() if s == 'num_batches_tracked' else
                            (channels, )) for s in _BN_STATS}


def torchvision_resnet_shapes(depth: int) -> Dict[str, Tuple[int, ...]]:
    """Every key of a torchvision ResNet backbone (no ``fc``) and its shape.

    Args:
        depth (int): 18, 34, 50, 101 or 152.

    Returns:
        dict[str, tuple[int, ...]]: key -> tensor shape, in module order.
    """
    if depth not in RESNET_ARCHS:
        raise ValueError(f'ResNet depth must be one of {sorted(RESNET_ARCHS)}'
                         f', got {depth}')
    block, stage_blocks = RESNET_ARCHS[depth]
    expansion = _EXPANSION[block]
    shapes = {'conv1.weight': (64, 3, 7, 7), **_bn('bn1', 64)}
    inplanes = 64
    for stage, num_blocks in enumerate(stage_blocks):
        planes = 64 * 2**stage
        for j in range(num_blocks):
            pre = f'layer{stage + 1}.{j}'
            if block == 'basic':
                convs = [(planes, inplanes, 3, 3), (planes, planes, 3, 3)]
            else:
                convs = [(planes, inplanes, 1, 1), (planes, planes, 3, 3),
                         (planes * expansion, planes, 1, 1)]
            for k, shape in enumerate(convs, start=1):
                shapes[f'{pre}.conv{k}.weight'] = shape
                shapes.update(_bn(f'{pre}.bn{k}', shape[0]))
            stride = 1 if stage == 0 else 2
            if j == 0 and (stride != 1 or inplanes != planes * expansion):
                shapes[f'{pre}.downsample.0.weight'] = (planes * expansion,
                                                        inplanes, 1, 1)
                shapes.update(_bn(f'{pre}.downsample.1', planes * expansion))
            inplanes = planes * expansion
    return shapes


def infer_resnet_depth(state_dict: Mapping[str, Any]) -> int:
    """Infer a ResNet's depth from its keys (blocks per stage, conv3 or not).

    Args:
        state_dict (Mapping[str, Any]): torchvision-layout backbone weights.

    Returns:
        int: the depth.

    Raises:
        ValueError: when the block counts match no known ResNet.
    """
    blocks = [0, 0, 0, 0]
    for key in state_dict:
        m = _BLOCK_KEY.match(key)
        if m:
            stage, j = int(m.group(1)) - 1, int(m.group(2))
            blocks[stage] = max(blocks[stage], j + 1)
    block = 'bottleneck' if any('.conv3.' in k for k in state_dict) \
        else 'basic'
    for depth, arch in RESNET_ARCHS.items():
        if arch == (block, tuple(blocks)):
            return depth
    raise ValueError(
        f'the weights are not a torchvision-layout ResNet: {block} blocks per '
        f'stage {tuple(blocks)} match none of '
        + ', '.join(f'ResNet-{d} {a[1]}' for d, a in RESNET_ARCHS.items()))


def check_torchvision_resnet(state_dict: Mapping[str, Any],
                             source: str = 'weights') -> int:
    """Check that ``state_dict`` is exactly a torchvision ResNet backbone.

    ``num_batches_tracked`` entries may be absent (older checkpoints).

    Args:
        state_dict (Mapping[str, Any]): backbone weights (no ``fc``).
        source (str): a name for error messages. Defaults to ``'weights'``.

    Returns:
        int: the ResNet depth.

    Raises:
        ValueError: naming every missing, unexpected or mis-shaped key.
    """
    depth = infer_resnet_depth(state_dict)
    expected = torchvision_resnet_shapes(depth)
    missing = [k for k in expected if k not in state_dict
               and not k.endswith('num_batches_tracked')]
    unexpected = [k for k in state_dict if k not in expected]
    wrong = [f'{k}: {tuple(state_dict[k].shape)} != {expected[k]}'
             for k in expected if k in state_dict
             and tuple(state_dict[k].shape) != expected[k]]
    if missing or unexpected or wrong:
        parts = [f'{name} ({len(keys)}): {keys[:8]}'
                 for name, keys in (('missing', missing),
                                    ('unexpected', unexpected),
                                    ('wrong shape', wrong)) if keys]
        raise ValueError(f'{source} is not a torchvision ResNet-{depth} '
                         'backbone: ' + '; '.join(parts))
    return depth
