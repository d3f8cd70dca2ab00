# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Command-line pieces that several ``tools/*.py`` share."""
import argparse
from typing import List, Sequence, Tuple


def add_flags(parser: argparse.ArgumentParser, **flags: str) -> None:
    """Add on/off switches (``store_true``), in the order given.

    Args:
        parser (argparse.ArgumentParser): Where to add them.
        **flags (str): ``name=help``; ``auto_scale_lr`` becomes
            ``--auto-scale-lr``.
    """
    for name, text in flags.items():
        parser.add_argument('--' + name.replace('_', '-'),
                            action='store_true', help=text)


def add_cfg_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--cfg-options k=v ...`` (MMEngine's ``DictAction``)."""
    from mmengine.config import DictAction
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, e.g. key=value')


def split_passthrough(argv: Sequence[str]) -> Tuple[List[str], List[str]]:
    """Split ``argv`` at the first ``--``: own arguments, passed-on ones.

    Args:
        argv (Sequence[str]): The command-line arguments.

    Returns:
        tuple[list[str], list[str]]: Before and after ``--`` (empty when
        there is none).
    """
    argv = list(argv)
    if '--' not in argv:
        return argv, []
    cut = argv.index('--')
    return argv[:cut], argv[cut + 1:]

