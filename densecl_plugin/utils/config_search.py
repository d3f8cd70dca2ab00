# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Finding transforms and modules in a nested config by their ``type``.

One walk for every place that reads or sets something inside a pipeline
config (the view size of a ``RandomResizedCrop`` inside ``MultiView``, for
example): the pre-training sanity hook, the benchmarks, the held-out
correspondence evaluation and the study's report.
"""
from typing import Any, List, Optional


def find_by_type(node: Any, type_part: str) -> List[dict]:
    """The dicts of a nested config (dicts, lists, tuples) whose ``type``
    contains ``type_part``, in depth-first order (the dicts themselves, so
    they can be changed in place).

    Args:
        node: A config, a pipeline list or any part of one.
        type_part (str): e.g. ``'RandomResizedCrop'`` (also matches a
            scoped ``'mmpretrain.RandomResizedCrop'``).
    """
    found = []
    if isinstance(node, dict):
        if type_part in str(node.get('type', '')):
            found.append(node)
        for value in node.values():
            found += find_by_type(value, type_part)
    elif isinstance(node, (list, tuple)):
        for value in node:
            found += find_by_type(value, type_part)
    return found


def crop_size(node: Any) -> Optional[int]:
    """The output size of the first ``RandomResizedCrop`` in ``node`` (its
    ``size``, or mmpretrain's ``scale``; the smaller side of a pair), or
    None when there is none."""
    for t in find_by_type(node, 'RandomResizedCrop'):
        size = t.get('size', t.get('scale'))
        if isinstance(size, (list, tuple)):
            size = min(size)
        if isinstance(size, int):
            return size
    return None
