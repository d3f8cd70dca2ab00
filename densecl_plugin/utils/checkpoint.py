# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Let ``torch.load(weights_only=True)`` read MMEngine checkpoints.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``: it only
unpickles tensors, containers and an allow-list of globals. MMEngine 0.10.7
calls ``torch.load`` without ``weights_only``
(``mmengine/runner/checkpoint.py``), and its checkpoints hold a few
non-tensor objects in ``meta['message_hub']``:
:class:`~mmengine.logging.HistoryBuffer` (with numpy arrays and scalars
inside) and its statistics methods, which pickle as
``getattr(HistoryBuffer, 'mean')``.
So ``tools/train.py --resume`` fails with ``Unsupported global:
mmengine.logging.history_buffer.HistoryBuffer`` (open-mmlab/mmengine#1655).

This module is the one place that fixes it, by adding exactly those types to
torch's allow-list. It does *not* turn the safety off: ``getattr`` is
allowed only through :func:`_history_buffer_getattr`, which resolves a
statistics method of a ``HistoryBuffer`` and refuses anything else, and any
other global in a file still raises ``UnpicklingError``.
``import densecl_plugin`` calls :func:`allow_mmengine_checkpoints`, so every
entry point (``tools/train.py``, ``mim train``, a config with
``custom_imports``) goes through it.
"""
import pickle
from typing import Any, List

import numpy as np
import torch

#: the statistics every HistoryBuffer has (``HistoryBuffer.__init__``)
_BUILTIN_STATISTICS = frozenset({'min', 'max', 'current', 'mean'})


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """``getattr`` restricted to HistoryBuffer's statistics methods."""
    from mmengine.logging import HistoryBuffer
    owner = obj if isinstance(obj, type) else type(obj)
    # HistoryBuffer fills its class-level registry on the first instance, so
    # a fresh process knows the built-in statistics only by name
    allowed = _BUILTIN_STATISTICS | set(owner._statistics_methods) \
        if issubclass(owner, HistoryBuffer) else ()
    if name in allowed:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'refusing getattr({type(obj).__name__}, {name!r}) while loading a '
        'checkpoint: densecl_plugin only allows the statistics methods of '
        'mmengine HistoryBuffer objects')


def _numpy_globals() -> List[Any]:
    core = getattr(np, '_core', None) or np.core
    globals_ = [np.ndarray, np.dtype, core.multiarray._reconstruct,
                core.multiarray.scalar]
    dtypes = getattr(np, 'dtypes', None)  # numpy >= 1.25: one class per dtype
    if dtypes is not None:
        globals_ += [getattr(dtypes, n) for n in dir(dtypes)
                     if n.endswith('DType')]
    return globals_


def allow_mmengine_checkpoints() -> None:
    """Add MMEngine checkpoint contents to ``torch.load``'s allow-list.

    Idempotent; a no-op on torch versions without ``add_safe_globals``.
    """
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is None:  # torch < 2.4: weights_only is opt-in
        return
    from mmengine.logging import HistoryBuffer
    add_safe_globals([HistoryBuffer, *_numpy_globals(),
                      (_history_buffer_getattr, 'builtins.getattr')])
