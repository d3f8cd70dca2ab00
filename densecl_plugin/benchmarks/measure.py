# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The small measuring helpers every benchmark shares.

- :func:`sync`: wait for a device's queued work before a clock is read;
- :func:`mib`: a byte count as MiB text for the reports.
"""
from typing import Optional

import torch


def sync(device: torch.device) -> None:
    """Wait until every kernel queued on ``device`` has finished.

    A no-op on CPU, whose ops run synchronously.

    Args:
        device (torch.device): The device whose clock-relevant work must be
            done.
    """
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def mib(n: Optional[int]) -> str:
    """``n`` bytes as ``'12.3 MiB'``, or ``'n/a'`` for None.

    Args:
        n (int, optional): A byte count, None where it was not measured.

    Returns:
        str: The text for a report.
    """
    return 'n/a' if n is None else f'{n / 2**20:.1f} MiB'
