# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Load pre-trained weights into a frozen evaluation backbone.

Any checkpoint layout that
:func:`densecl_plugin.converters.load_backbone_weights` knows works: a full
pre-training checkpoint (``backbone.*`` next to ``neck.*``, ``encoder_k.*``
and the queues), an extracted one (bare ``conv1.*``, ``layer1.*`` ...), the
authors' OpenSelfSup files (``encoder_q.0.*``) and MoCo's
(``module.encoder_q.*``). Unlike MMEngine's ``Pretrained`` init, which loads
with ``strict=False`` and only warns, a weight the backbone needs but the
file lacks is an error here: an evaluation of a half-random backbone is
worse than no evaluation.
"""
from typing import Sequence

import torch.nn as nn
from mmengine.logging import print_log


def load_pretrained_backbone(backbone: nn.Module,
                             checkpoint: str,
                             map_location: str = 'cpu',
                             ignore_missing: Sequence[str] = ()) -> dict:
    """Copy a checkpoint's backbone weights into ``backbone``.

    Extra weights in the file (``layer4.*`` for a truncated encoder, a
    classifier ``fc.*``) are skipped and reported in the log.

    Args:
        backbone (nn.Module): the model to fill (a torchvision-layout ResNet
            such as mmdet's ``ResNet``, possibly with fewer stages).
        checkpoint (str): path or URI of the checkpoint.
        map_location (str): where to map tensors. Defaults to ``'cpu'``.
        ignore_missing (Sequence[str]): key prefixes of ``backbone`` that may
            stay as initialised. Defaults to ``()``.

    Returns:
        dict: ``layout`` and ``prefix`` of the source, ``loaded`` (number of
        tensors copied) and ``skipped`` (file keys the backbone has no use
        for).

    Raises:
        ValueError: when the file lacks weights the backbone needs (the
            message names them and the file's key prefixes), or a weight's
            shape differs from the backbone's.
    """
    from densecl_plugin.converters import (load_backbone_weights,
                                           summarize_prefixes)
    weights = load_backbone_weights(checkpoint, map_location)
    source = weights.state_dict
    own = backbone.state_dict()
    missing = [k for k in own if k not in source
               and not k.endswith('num_batches_tracked')
               and not k.startswith(tuple(ignore_missing))]
    if missing:
        raise ValueError(
            f'checkpoint {checkpoint!r} ({weights.layout}, prefix '
            f'{weights.prefix!r} stripped) lacks {len(missing)} weights of '
            f'the {type(backbone).__name__} backbone, e.g. {missing[:5]}; '
            f'its backbone keys are {summarize_prefixes(source)}. Is the '
            'depth (or the stem type) of the config the one that was '
            'pre-trained?')
    wrong = [f'{k}: file {tuple(source[k].shape)} vs model '
             f'{tuple(own[k].shape)}' for k in own
             if k in source and tuple(source[k].shape) != tuple(own[k].shape)]
    if wrong:
        raise ValueError(f'checkpoint {checkpoint!r} has weights of other '
                         f'shapes than the backbone: {wrong[:5]}')
    to_load = {k: source[k] for k in own if k in source}
    backbone.load_state_dict(to_load, strict=False)
    skipped = sorted(k for k in source if k not in own)
    print_log(
        f'loaded {len(to_load)} backbone tensors from {checkpoint} '
        f'({weights.layout}, prefix {weights.prefix!r})'
        + (f'; skipped {summarize_prefixes(skipped)}' if skipped else ''),
        logger='current')
    return dict(layout=weights.layout, prefix=weights.prefix,
                loaded=len(to_load), skipped=skipped)
