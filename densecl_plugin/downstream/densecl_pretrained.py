# Copyright (c) densecl_plugin contributors. All rights reserved.
"""``DenseCLPretrained``: load a pre-trained ResNet into a downstream model.

Used as the *model-level* ``init_cfg`` of our mmdet/mmseg benchmark configs::

    model = dict(
        init_cfg=dict(type='densecl_plugin.DenseCLPretrained',
                      checkpoint=None,  # set by --cfg-options
                      # model.init_cfg.checkpoint=PATH
                      targets=['backbone', 'roi_head.shared_head']))

so that ONE override sets the weights of every part that comes from the
pre-trained ResNet (the backbone and, for C4 detectors, the ``layer4`` of the
RoI shared head). Compared with MMEngine's ``Pretrained`` + ``prefix``:

- any checkpoint layout works without choosing a ``prefix``: a full
  densecl_plugin / mmselfsup / mmpretrain checkpoint (``backbone.*``), an
  OpenSelfSup one (``encoder_q.0.*``), MoCo (``module.encoder_q.*``) or an
  extracted backbone (no prefix); see
  :mod:`densecl_plugin.converters.extract_backbone_weights`;
- every target parameter must come from the file: missing keys, wrong
  shapes and left-over file keys are errors that name the keys, where
  ``Pretrained`` only logs a warning (``strict=False``), which is how a
  deep-stem ``ResNetV1c`` silently stays random;
- a missing file, or a file with no backbone, fails when the weights are
  initialised, i.e. before the first training iteration.

How it runs: MMEngine applies a module's non-``Pretrained`` ``init_cfg``
*before* initialising its children, so after loading, each target is marked
``is_init = True``; ``BaseModule.init_weights`` then skips it instead of
re-initialising it with its own default init.
"""
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine.logging import print_log
from mmengine.model.weight_init import update_init_info
from torch import nn

from densecl_plugin.converters import load_backbone_weights
from densecl_plugin.registry import WEIGHT_INITIALIZERS

#: the config key the benchmark configs document for the checkpoint path
CHECKPOINT_OPTION = 'model.init_cfg.checkpoint'
#: BN counters that older checkpoints may lack; never an error
_OPTIONAL_SUFFIXES = ('num_batches_tracked', )


@WEIGHT_INITIALIZERS.register_module()
class DenseCLPretrained:
    """Initialise sub-modules of a model from a pre-trained backbone.

    Args:
        checkpoint (str, optional): the pre-trained checkpoint (local path or
            any URI MMEngine reads). ``None`` is an error at init time that
            tells the user which option to set. Defaults to None.
        targets (str | Sequence[str]): dotted names of the sub-modules to
            fill, relative to the module this init_cfg belongs to (``''``
            for that module itself). Each target's state dict keys are looked
            up in the backbone weights under the same names (a C4 shared
            head's ``layer4.*`` matches the backbone's ``layer4.*``).
            Defaults to ``('backbone', )``.
        allow_missing (Sequence[str]): key prefixes (relative to the module
            this init_cfg belongs to) that are allowed to be absent from the
            file, e.g. ``['roi_head.shared_head.extra_norm.']`` for a layer
            that pre-training does not have. Defaults to ``()``.
        allow_unused (bool): accept file keys that no target uses. Defaults
            to False.
        map_location (str): where to load tensors. Defaults to ``'cpu'``.
    """

    def __init__(self,
                 checkpoint: Optional[str] = None,
                 targets: Union[str, Sequence[str]] = ('backbone', ),
                 allow_missing: Sequence[str] = (),
                 allow_unused: bool = False,
                 map_location: str = 'cpu') -> None:
        self.checkpoint = checkpoint
        self.targets = [targets] if isinstance(targets, str) else list(targets)
        if not self.targets:
            raise ValueError('DenseCLPretrained needs at least one target')
        self.allow_missing = tuple(allow_missing)
        self.allow_unused = allow_unused
        self.map_location = map_location
        #: what the last call loaded: target -> list of keys
        self.loaded: Dict[str, List[str]] = {}
        #: file keys that no target used (empty unless ``allow_unused``)
        self.unused: List[str] = []

    def __call__(self, module: nn.Module) -> None:
        if not self.checkpoint:
            raise ValueError(
                'no pre-trained checkpoint: set it with --cfg-options '
                f'{CHECKPOINT_OPTION}=PATH (a densecl_plugin, mmselfsup, '
                'mmpretrain, OpenSelfSup or MoCo checkpoint, or an extracted '
                'backbone)')
        try:
            weights = load_backbone_weights(self.checkpoint, self.map_location)
        except (FileNotFoundError, ValueError) as err:
            raise type(err)(f'{CHECKPOINT_OPTION}: {err}') from err
        state_dict = weights.state_dict
        used = set()
        problems = []
        self.loaded = {}
        for target in self.targets:
            sub = self._get_target(module, target)
            own = sub.state_dict()
            dotted = f'{target}.' if target else ''
            missing = [k for k in own if k not in state_dict
                       and not k.endswith(_OPTIONAL_SUFFIXES)
                       and not (dotted + k).startswith(self.allow_missing)]
            wrong = [f'{k}: file {tuple(state_dict[k].shape)} vs model '
                     f'{tuple(own[k].shape)}' for k in own if k in state_dict
                     and tuple(state_dict[k].shape) != tuple(own[k].shape)]
            if missing:
                problems.append(f'{target or "model"} parameters missing from '
                                f'the file ({len(missing)}): {missing[:6]}')
            if wrong:
                problems.append(f'{target or "model"} shape mismatches '
                                f'({len(wrong)}): {wrong[:6]}')
            if missing or wrong:
                continue
            sub_sd = {k: state_dict[k] for k in own if k in state_dict}
            # keys were checked above; the only keys left out are the
            # allowed ones, so torch's non-strict load reports nothing new
            sub.load_state_dict(sub_sd, strict=False)
            used.update(sub_sd)
            self.loaded[target] = sorted(sub_sd)
        self.unused = sorted(set(state_dict) - used)
        if self.unused and not self.allow_unused and not problems:
            problems.append(f'file keys that no target uses '
                            f'({len(self.unused)}): {self.unused[:6]}')
        if problems:
            raise ValueError(
                f'{CHECKPOINT_OPTION}={self.checkpoint!r} ({weights.layout} '
                f'layout, prefix {weights.prefix!r}) does not fit targets '
                f'{self.targets}: ' + '; '.join(problems))
        for target in self.targets:
            sub = self._get_target(module, target)
            if hasattr(sub, 'is_init'):
                sub.is_init = True  # children loop of init_weights skips it
            if hasattr(sub, '_params_init_info'):
                update_init_info(sub, init_info=self._get_init_info())
        print_log(
            f'DenseCLPretrained: loaded {self.checkpoint} ({weights.layout}, '
            f'prefix {weights.prefix!r}) into '
            + ', '.join(f'{t or "model"} ({len(k)} tensors)'
                        for t, k in self.loaded.items()),
            logger='current')

    @staticmethod
    def _get_target(module: nn.Module, target: str) -> nn.Module:
        try:
            return module.get_submodule(target) if target else module
        except AttributeError as err:
            children = [n for n, _ in module.named_children()]
            raise ValueError(
                f'DenseCLPretrained target {target!r} is not a sub-module of '
                f'{type(module).__name__} (its children: {children})') from err

    def _get_init_info(self) -> str:
        return f'{type(self).__name__}: load from {self.checkpoint}'


def check_pretrained(checkpoint: str) -> Dict[str, Union[str, int]]:
    """Check, before any training, that ``checkpoint`` holds a backbone.

    Args:
        checkpoint (str): the pre-trained checkpoint.

    Returns:
        dict: ``layout``, ``prefix`` and ``num_tensors`` of the backbone.

    Raises:
        FileNotFoundError: the file does not exist.
        BackboneNotFoundError: the file has no backbone weights (the message
            lists the prefixes it does have).
    """
    weights = load_backbone_weights(checkpoint)
    num = sum(1 for v in weights.state_dict.values() if torch.is_tensor(v))
    return dict(layout=weights.layout, prefix=weights.prefix, num_tensors=num)
