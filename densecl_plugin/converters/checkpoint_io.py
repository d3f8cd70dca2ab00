# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Read a checkpoint file and find its state dict, with clear errors.

Files are read with ``torch.load(weights_only=True)``: tensors, containers,
strings and numbers only, plus the MMEngine message-hub objects that
``import densecl_plugin`` adds to torch's allow-list
(:mod:`densecl_plugin.utils.checkpoint`). Remote paths (``http://``,
``s3://``, ``torchvision://`` ...) go through MMEngine's
:class:`~mmengine.runner.CheckpointLoader`.
"""
import os.path as osp
import pickle
from typing import Any, Dict, Mapping

import torch

#: keys under which known trainers store the model weights, in lookup order
STATE_DICT_KEYS = ('state_dict', 'model')


def load_checkpoint_file(path: str, map_location: str = 'cpu') -> Any:
    """Load a checkpoint file (local or remote) into memory.

    Args:
        path (str): a local file, or any URI that MMEngine's
            ``CheckpointLoader`` knows (``http://``, ``torchvision://`` ...).
        map_location (str): where to map the tensors. Defaults to ``'cpu'``.

    Returns:
        Any: the unpickled object (usually a dict).

    Raises:
        FileNotFoundError: a local ``path`` that does not exist.
        ValueError: a file that ``torch.load`` cannot read safely.
    """
    if not isinstance(path, str) or not path:
        raise ValueError(f'checkpoint path must be a non-empty string, got '
                         f'{path!r}')
    if '://' in path:
        from mmengine.runner import CheckpointLoader
        return CheckpointLoader.load_checkpoint(path, map_location)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'checkpoint file {path!r} does not exist'
            + ('' if osp.isabs(path) else
               f' (relative to the working directory {osp.abspath(".")})'))
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as err:
        raise ValueError(
            f'cannot read checkpoint {path!r} with torch.load(weights_only='
            f'True): {err}. It is either not a PyTorch checkpoint, truncated, '
            'or it pickles objects other than tensors, containers and '
            'MMEngine logging buffers.') from err


def find_state_dict(checkpoint: Any, source: str = 'checkpoint'
                    ) -> Dict[str, Any]:
    """Return the model state dict inside a loaded checkpoint.

    Looks under ``'state_dict'`` (MMEngine, OpenSelfSup, MoCo), then
    ``'model'`` (detectron2-style), else takes the object itself when it is a
    flat mapping of names to tensors.

    Args:
        checkpoint (Any): what :func:`load_checkpoint_file` returned.
        source (str): a name for error messages (e.g. the file path).
            Defaults to ``'checkpoint'``.

    Returns:
        dict[str, Any]: parameter name -> tensor (or array).

    Raises:
        ValueError: when ``checkpoint`` is not a mapping or holds no weights.
    """
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f'{source} holds a {type(checkpoint).__name__}, '
                         'expected a dict of weights (or a dict with a '
                         "'state_dict' entry)")
    for key in STATE_DICT_KEYS:
        inner = checkpoint.get(key)
        if isinstance(inner, Mapping) and inner:
            return dict(inner)
    if checkpoint and all(torch.is_tensor(v) or hasattr(v, 'shape')
                          for v in checkpoint.values()):
        return dict(checkpoint)
    raise ValueError(
        f'{source} has no weights: expected a non-empty '
        f"{' or '.join(repr(k) for k in STATE_DICT_KEYS)} entry or a flat "
        f'dict of tensors; its top-level keys are {sorted(checkpoint)[:20]}')
