# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Argument checks shared by the models' constructors."""
from typing import Any


def check_bool(owner: str, key: str, value: Any) -> None:
    """Refuse a flag that is not a real ``bool``.

    ``0``/``1``, ``'False'`` or None in a config are mistakes, not flags:
    a string would read as true. A wrong type is a ``TypeError``.

    Args:
        owner (str): Who takes the flag, e.g. ``'DenseCL'``; it opens the
            message.
        key (str): The argument's name.
        value (Any): What was given.

    Raises:
        TypeError: ``value`` is not a ``bool``.
    """
    if not isinstance(value, bool):
        raise TypeError(f'{owner}: {key} must be a bool, got {value!r}')
