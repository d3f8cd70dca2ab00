# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Find and extract the backbone (query encoder) of a pre-training checkpoint.

Known layouts, tried in this order (the first prefix with keys wins):

============================  ==============================================
prefix                        written by
============================  ==============================================
``backbone.``                 densecl_plugin, mmselfsup 1.x, mmpretrain 1.x,
                              and OpenSelfSup / the authors' DenseCL (which
                              also hold the same weights as ``encoder_q.0.``)
``encoder_q.0.``              OpenSelfSup / WXinlong/DenseCL query encoder
``module.encoder_q.``         facebookresearch/moco (DDP-wrapped ResNet)
``encoder_q.``                a MoCo-style model saved without DDP
(none)                        an already extracted ResNet (``conv1.*``,
                              ``layer1.*`` ...), e.g. the authors' released
                              ``densecl_r50_imagenet_200ep.pth``
============================  ==============================================

The key encoder (``encoder_k.*``), necks, queues and a torchvision
classifier (``fc.*``) are never part of the result.
"""
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch

from .checkpoint_io import find_state_dict, load_checkpoint_file

#: (prefix, who writes it), in lookup order
BACKBONE_PREFIXES: Tuple[Tuple[str, str], ...] = (
    ('backbone.', 'densecl_plugin / mmselfsup 1.x / mmpretrain 1.x'),
    ('encoder_q.0.', "OpenSelfSup / authors' DenseCL"),
    ('module.encoder_q.', 'MoCo (facebookresearch/moco)'),
    ('encoder_q.', 'MoCo-style encoder without DDP'),
)
#: keys of a torchvision classifier, dropped from every backbone
CLASSIFIER_PREFIXES = ('fc.', )
#: a bare (already extracted) ResNet must have these key prefixes
BARE_RESNET_MARKERS = ('conv1.', 'layer1.')


class BackboneNotFoundError(ValueError):
    """A checkpoint holds no backbone weights in any known layout."""


@dataclass
class BackboneWeights:
    """A backbone state dict and where it came from.

    Attributes:
        state_dict (dict[str, Tensor]): backbone keys (``conv1.weight`` ...).
        layout (str): who wrote the source checkpoint.
        prefix (str): the prefix that was stripped (``''`` when none).
        dropped (list[str]): source keys under ``prefix`` that were dropped
            (a classifier ``fc.*``).
    """
    state_dict: Dict[str, Any]
    layout: str
    prefix: str
    dropped: List[str] = field(default_factory=list)


def summarize_prefixes(keys, depth: int = 1, limit: int = 12) -> str:
    """Describe the key prefixes of a state dict, e.g. ``'neck (4 keys)'``.

    Args:
        keys (Iterable[str]): state dict keys.
        depth (int): how many dotted components make a prefix. Defaults to 1.
        limit (int): the most prefixes to list. Defaults to 12.

    Returns:
        str: comma-separated ``'prefix. (N keys)'`` items, most common first.
    """
    counts = Counter()
    for key in keys:
        parts = key.split('.')
        tail = '.' if len(parts) > depth else ''
        counts['.'.join(parts[:depth]) + tail] += 1
    items = [f'{p!r} ({n} key{"s" if n > 1 else ""})'
             for p, n in counts.most_common(limit)]
    if len(counts) > limit:
        items.append(f'... {len(counts) - limit} more')
    return ', '.join(items) if items else 'no keys at all'


def _is_bare_resnet(state_dict: Mapping[str, Any]) -> bool:
    return all(any(k.startswith(m) for k in state_dict)
               for m in BARE_RESNET_MARKERS)


def extract_backbone_state_dict(state_dict: Mapping[str, Any],
                                source: str = 'checkpoint'
                                ) -> BackboneWeights:
    """Extract the backbone weights of a pre-training state dict.

    Args:
        state_dict (Mapping[str, Any]): the model weights (already taken out
            of the checkpoint's ``'state_dict'``; see
            :func:`~densecl_plugin.converters.checkpoint_io.find_state_dict`).
        source (str): a name for error messages. Defaults to ``'checkpoint'``.

    Returns:
        BackboneWeights: the backbone keys with the prefix stripped and the
        classifier dropped.

    Raises:
        BackboneNotFoundError: when no known backbone prefix has keys and the
            weights are not a bare ResNet either; the message lists the
            prefixes found.
    """
    for prefix, layout in BACKBONE_PREFIXES:
        sub = {k[len(prefix):]: v for k, v in state_dict.items()
               if k.startswith(prefix)}
        if sub:
            break
    else:
        if not _is_bare_resnet(state_dict):
            known = ', '.join(repr(p) for p, _ in BACKBONE_PREFIXES)
            raise BackboneNotFoundError(
                f'{source} holds no backbone weights: expected keys starting '
                f'with one of {known}, or an extracted ResNet (keys '
                f"{', '.join(repr(m + '*') for m in BARE_RESNET_MARKERS)}); "
                f'found {summarize_prefixes(state_dict)}. A deep-stem '
                "ResNetV1c ('stem.*') is not a 7x7-stem ResNet.")
        prefix, layout, sub = '', 'extracted backbone', dict(state_dict)
    dropped = sorted(k for k in sub if k.startswith(CLASSIFIER_PREFIXES))
    weights = {k: v for k, v in sub.items() if k not in set(dropped)}
    if not weights:
        raise BackboneNotFoundError(
            f'{source}: the {prefix!r} keys hold only a classifier '
                       f'({dropped}), no backbone weights')
    return BackboneWeights(weights, layout, prefix, dropped)


def load_backbone_weights(path: str, map_location: str = 'cpu'
                          ) -> BackboneWeights:
    """Load a checkpoint file and extract its backbone weights.

    Args:
        path (str): the checkpoint (any layout in the module docstring).
        map_location (str): where to map tensors. Defaults to ``'cpu'``.

    Returns:
        BackboneWeights: see :func:`extract_backbone_state_dict`.
    """
    checkpoint = load_checkpoint_file(path, map_location)
    state_dict = find_state_dict(checkpoint, source=f'checkpoint {path!r}')
    return extract_backbone_state_dict(state_dict,
                                       source=f'checkpoint {path!r}')


def extract_backbone_weights(src: str, dst: str,
                             meta: Optional[Dict[str, Any]] = None
                             ) -> BackboneWeights:
    """Write the backbone of ``src`` to ``dst`` as ``{'state_dict', 'meta'}``.

    The output loads with ``torch.load(weights_only=True)`` and with
    MMEngine's ``Pretrained`` init (no ``prefix``), and our
    :class:`~densecl_plugin.downstream.DenseCLPretrained` takes it as well.

    Args:
        src (str): the pre-training checkpoint.
        dst (str): the output file (``.pth``).
        meta (dict, optional): extra entries for ``meta``. Defaults to None.

    Returns:
        BackboneWeights: what was written.
    """
    import os
    weights = load_backbone_weights(src)
    state_dict = {k: v.detach().clone().contiguous() if torch.is_tensor(v)
                  else v for k, v in weights.state_dict.items()}
    out_meta = dict(source=os.path.basename(src), source_layout=weights.layout,
                    stripped_prefix=weights.prefix,
                    dropped_keys=list(weights.dropped),
                    converter='densecl_plugin.converters.'
                    'extract_backbone_weights')
    out_meta.update(meta or {})
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    torch.save(dict(state_dict=state_dict, meta=out_meta), dst)
    return BackboneWeights(state_dict, weights.layout, weights.prefix,
                           weights.dropped)
