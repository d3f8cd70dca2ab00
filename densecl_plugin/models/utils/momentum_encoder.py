# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The momentum (key) encoder of MoCo and DenseCL."""
import copy
import warnings
from typing import Optional

import torch
from torch import nn


class MomentumEncoder(nn.Module):
    """A momentum copy of the query encoder: ``k <- m * k + (1 - m) * q``.

    ``momentum`` follows the paper (MoCo, DenseCL): it is the weight of the
    *old* key parameters, ``m = 0.999`` by default. mmpretrain 1.x and
    MMEngine's ``ExponentialMovingAverage`` write the inverse: there
    ``momentum=0.001`` is the weight of the *query* and means the same update.
    A value below 0.5 would keep less than half of the key encoder per step,
    which no momentum-contrast recipe does, so it is read in that convention
    (``m = 1 - momentum``) with a warning: an mmpretrain DenseCL / MoCo config
    keeps its ``momentum=0.001`` and trains as it did there.

    The state-dict layout is that of mmpretrain 1.2 checkpoints: the copied
    module under ``module.*`` (for ``nn.Sequential(backbone, neck)``:
    ``module.0.*`` and ``module.1.*``) and the update counter ``steps``.

    The first :meth:`update` (``steps == 0``) copies the query parameters, so
    the copy happens *after* the query's ``init_weights`` (which the runner
    calls after construction) rather than at construction. Only parameters
    are averaged: the key encoder keeps its own buffers, e.g. BN running
    statistics updated by its own forward passes, as MoCo's key encoder does.

    Args:
        model (nn.Module): The query encoder; it is deep-copied and the copy
            gets ``requires_grad=False``.
        momentum (float): ``m`` in ``k <- m * k + (1 - m) * q``, in (0, 1);
            below 0.5 it is mmpretrain's ``1 - m`` (see above). Defaults to
            0.999.

    Raises:
        ValueError: if ``momentum`` is not in the open interval (0, 1).
    """

    def __init__(self, model: nn.Module, momentum: float = 0.999) -> None:
        super().__init__()
        if not isinstance(momentum, (int, float)) or not 0 < momentum < 1:
            raise ValueError(
                f'momentum must be in the open interval (0, 1) (paper '
                f'convention k <- m*k + (1-m)*q, e.g. 0.999), '
                f'got {momentum!r}')
        if momentum < 0.5:
            warnings.warn(
                f'MomentumEncoder: momentum={momentum} is read in '
                f"mmpretrain's inverted convention (the weight of the query, "
                f'as MMEngine\'s ExponentialMovingAverage): the key encoder '
                f'is updated k <- {1 - momentum:g} * k + {momentum:g} * q. '
                f'Write momentum={1 - momentum:g} (the paper convention) to '
                f'silence this.', UserWarning, stacklevel=2)
            momentum = 1.0 - momentum
        self.m = float(momentum)
        self.module = copy.deepcopy(model)
        self.module.requires_grad_(False)
        self.register_buffer('steps', torch.zeros((), dtype=torch.long))
        # host-side copy of ``steps > 0``: None until read (once, or again
        # after a state dict is loaded), so that updates after the first do
        # not read the buffer on the host (a device synchronisation)
        self._started: Optional[bool] = None

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        self._started = None  # ``steps`` may change
        super()._load_from_state_dict(*args, **kwargs)

    def forward(self, *args, **kwargs):
        """Run the key encoder (``self.module``)."""
        return self.module(*args, **kwargs)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Update the key parameters from the query encoder ``model``.

        ``model`` must have the parameters of the copied module in the same
        order (e.g. ``nn.Sequential(backbone, neck)``). The first call copies
        them; later calls do ``k <- m * k + (1 - m) * q`` in one fused
        ``torch._foreach_lerp_`` over all parameters.

        Args:
            model (nn.Module): The query encoder.

        Raises:
            ValueError: if the parameter shapes of ``model`` and the key
                encoder do not match.
        """
        params_k = list(self.module.parameters())
        params_q = [p.detach() for p in model.parameters()]
        if self._started is None:
            self._started = bool(self.steps > 0)
        if not self._started:
            if [p.shape for p in params_k] != [p.shape for p in params_q]:
                raise ValueError(
                    'MomentumEncoder.update: the query encoder does not have '
                    f'the parameters of the key encoder ({len(params_q)} vs '
                    f'{len(params_k)} tensors, or different shapes)')
            torch._foreach_copy_(params_k, params_q)
        else:
            torch._foreach_lerp_(params_k, params_q, 1.0 - self.m)
        self._started = True
        self.steps += 1
