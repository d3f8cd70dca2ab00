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



def add_step_args(parser: argparse.ArgumentParser, steps_flag: str = 'iters',
                  steps_help: str = 'timed steps per model',
                  steps_default: int = 10) -> None:
    """Add the model and input flags of the step benchmarks.

    ``--depth``, ``--batch``, ``--size``, ``--queue-len``, the step count
    (``--iters`` or ``--steps``), ``--warmup`` and ``--device``.

    Args:
        parser (argparse.ArgumentParser): Where to add them.
        steps_flag (str): Name of the step-count flag. Defaults to
            ``'iters'``.
        steps_help (str): Its help. Defaults to ``'timed steps per model'``.
        steps_default (int): Its default. Defaults to 10.
    """
    parser.add_argument('--depth', type=int, default=50, help='ResNet depth')
    parser.add_argument('--batch', type=int, default=8,
                        help='images per step')
    parser.add_argument('--size', type=int, default=224,
                        help='input side (px)')
    parser.add_argument('--queue-len', type=int, default=65536, help='K')
    parser.add_argument('--' + steps_flag, type=int, default=steps_default,
                        help=steps_help)
    parser.add_argument('--warmup', type=int, default=2,
                        help='untimed steps per model first')
    parser.add_argument('--device', default='cpu', help="'cpu' or 'cuda'")


def add_demo_dirs(parser: argparse.ArgumentParser, work_dir_help: str,
                  data_dir_help: str = 'where the data sets are written'
                  ) -> None:
    """Add ``--work-dir``, ``--data-dir``, ``--cache-dir`` and
    ``--no-progress``, the flags of the demo and of the studies built on it.

    Args:
        parser (argparse.ArgumentParser): Where to add them.
        work_dir_help (str): The help of ``--work-dir`` (its default).
        data_dir_help (str): The help of ``--data-dir``. Defaults to
            ``'where the data sets are written'``.
    """
    parser.add_argument('--work-dir', default=None, help=work_dir_help)
    parser.add_argument('--data-dir', default='data/demo', help=data_dir_help)
    parser.add_argument('--cache-dir', default='data/cache',
                        help='where downloaded wheels are kept')
    add_flags(parser, no_progress='no progress bars')
