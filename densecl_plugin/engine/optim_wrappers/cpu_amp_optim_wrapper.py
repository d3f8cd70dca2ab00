# Copyright (c) densecl_plugin contributors. All rights reserved.
"""``CPUAmpOptimWrapper``: mixed precision (bfloat16 autocast) on a CPU."""
from contextlib import contextmanager
from typing import Union

import torch
from mmengine.optim import OptimWrapper
from torch import nn

from densecl_plugin.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """Mixed-precision training on a CPU: bfloat16 autocast, no loss scaling.

    MMEngine's ``AmpOptimWrapper`` needs a GPU (it asserts one) and float16
    with a loss scaler; this is its CPU counterpart, what
    ``tools/train.py --amp`` selects where no GPU is present. Inside
    :meth:`optim_context` (which wraps the model's forward and loss in
    ``train_step``) ``torch.autocast('cpu', dtype=torch.bfloat16)`` runs the
    ops on autocast's lower-precision list (convolutions, linear layers,
    matrix products) in bfloat16; parameters, gradients and optimizer state
    stay float32. bfloat16 has float32's exponent range, so small gradients
    do not underflow and no loss scaling is needed. DenseCL's and MoCo v2's
    InfoNCE losses compute their logits and softmax in float32 under
    autocast (see :func:`~densecl_plugin.models.losses.queue_infonce_loss`).

    Args:
        dtype (str | torch.dtype): The autocast dtype; only ``'bfloat16'``
            (float16 on a CPU would need loss scaling and is usually slower).
            Defaults to ``'bfloat16'``.
        **kwargs: The arguments of :class:`~mmengine.optim.OptimWrapper`
            (``optimizer``, ``accumulative_counts``, ``clip_grad``).

    Examples:
        >>> optim_wrapper = dict(
        ...     type='CPUAmpOptimWrapper',
        ...     optimizer=dict(type='SGD', lr=0.03, momentum=0.9))
    """

    def __init__(self, dtype: Union[str, torch.dtype] = 'bfloat16',
                 **kwargs) -> None:
        if dtype not in ('bfloat16', torch.bfloat16):
            raise ValueError(
                f'CPUAmpOptimWrapper: dtype must be "bfloat16", got {dtype!r}'
                '; float16 needs loss scaling, use AmpOptimWrapper on a GPU')
        super().__init__(**kwargs)
        self.cast_dtype = torch.bfloat16

    @contextmanager
    def optim_context(self, model: nn.Module):
        """The parent's context (gradient accumulation) plus bf16 autocast.

        Args:
            model (nn.Module): The trained model (possibly wrapped).

        Raises:
            RuntimeError: if the model's parameters are not on the CPU
                (autocast on the CPU would silently leave them in float32).
        """
        param = next(model.parameters(), None)
        if param is not None and param.device.type != 'cpu':
            raise RuntimeError(
                'CPUAmpOptimWrapper autocasts CPU operations only, but the '
                f'model is on {param.device}; use optim_wrapper.type='
                '"AmpOptimWrapper" on a GPU')
        with super().optim_context(model), torch.autocast(
                'cpu', dtype=self.cast_dtype):
            yield
