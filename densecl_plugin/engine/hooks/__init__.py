# Copyright (c) densecl_plugin contributors. All rights reserved.
from .atomic_save_hook import AtomicSaveHook
from .correspondence_hook import CorrespondenceHook
from .densecl_hook import DenseCLHook
from .health_hook import HealthHook
from .non_finite_check_hook import NonFiniteCheckHook, NonFiniteLossError
from .pretraining_sanity_hook import PretrainingSanityHook
from .resolved_values_hook import ResolvedValuesHook
from .rng_state_hook import RNGStateHook

__all__ = [
    'DenseCLHook', 'CorrespondenceHook', 'AtomicSaveHook', 'HealthHook',
    'NonFiniteCheckHook', 'NonFiniteLossError', 'PretrainingSanityHook',
    'ResolvedValuesHook', 'RNGStateHook'
]
