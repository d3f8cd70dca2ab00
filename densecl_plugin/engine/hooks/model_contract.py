# Copyright (c) densecl_plugin contributors. All rights reserved.
"""How the hooks reach the model: the runner's model, unwrapped from DDP,
checked against the momentum-contrast contract (the attributes listed in
:class:`~densecl_plugin.models.algorithms.base.BaseMomentumContrast`)."""
from typing import Optional

from mmengine.model import is_model_wrapper
from torch import nn

from densecl_plugin.models.algorithms.base import BaseMomentumContrast


def unwrapped_model(runner) -> nn.Module:
    """``runner.model``, or the module inside its DDP wrapper."""
    model = runner.model
    return model.module if is_model_wrapper(model) else model


def contrast_model(runner) -> Optional[BaseMomentumContrast]:
    """The runner's momentum-contrast model (DenseCL, MoCo v2); None for
    any other model."""
    model = unwrapped_model(runner)
    return model if isinstance(model, BaseMomentumContrast) else None


def dense_model(runner, who: str, needs: str) -> BaseMomentumContrast:
    """The runner's momentum-contrast model with a dense loss (DenseCL).

    Args:
        runner: The runner.
        who (str): The hook, named in the error.
        needs (str): What the hook sets on the model, named in the error.

    Raises:
        TypeError: for any other model, naming it.
    """
    model = contrast_model(runner)
    if model is None or not model.is_dense:
        name = type(unwrapped_model(runner)).__name__
        raise TypeError(f'{who} needs a model with a dense loss and its '
                        f'`{needs}` attribute (DenseCL), got {name}')
    return model
