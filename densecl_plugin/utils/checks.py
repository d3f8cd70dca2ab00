# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Argument checks shared by the models' and hooks' constructors."""
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


def check_int(owner: str, key: str, value: Any, minimum: int,
              note: str = '') -> None:
    """Refuse a count that is not an ``int`` of at least ``minimum``.

    ``True`` is refused too (``bool`` is an ``int`` in Python, but never a
    count in a config).

    Args:
        owner (str): Who takes the count, e.g. ``'DenseCLHook'``; it opens
            the message.
        key (str): The argument's name.
        value (Any): What was given.
        minimum (int): The smallest allowed value.
        note (str): Said after the bound, e.g. ``' (0 = off)'``. Defaults to
            ``''``.

    Raises:
        ValueError: ``value`` is not an ``int`` >= ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, int) \
            or value < minimum:
        raise ValueError(f'{owner}: {key} must be an int >= {minimum}{note}, '
                         f'got {value!r}')
