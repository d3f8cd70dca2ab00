# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The ``densecl_plugin`` registry scope.

One registry per node that an MMEngine :class:`~mmengine.runner.Runner` builds,
each parented to MMEngine's root registry, so that with
``default_scope='densecl_plugin'`` a config resolves, in this order:

1. our own modules (``DenseCL``, ``DenseCLNeck``, ...), imported lazily from
   the ``locations`` below on the first lookup;
2. MMEngine's built-ins (``IterBasedTrainLoop``, ``CheckpointHook``, ...),
   through the parent;
3. other scopes by prefix (``mmdet.ResNet``, ``mmseg.ResNet``).

Nothing here imports heavy code: the ``locations`` are imported only when a
registry is first queried.
"""
from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import \
    RUNNER_CONSTRUCTORS as MMENGINE_RUNNER_CONSTRUCTORS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import \
    WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
from mmengine.registry import Registry

SCOPE = 'densecl_plugin'
# where the nodes' modules live (imported on a node's first lookup)
_ENGINE = f'{SCOPE}.engine'
_DATA = f'{SCOPE}.datasets'
_MODELS = f'{SCOPE}.models'
_EVALUATION = f'{SCOPE}.evaluation'
_VISUALIZATION = f'{SCOPE}.visualization'


def _node(name: str, parent: Registry, *locations: str) -> Registry:
    """Build one registry node of our scope, parented to MMEngine's."""
    return Registry(name, parent=parent, scope=SCOPE,
                    locations=list(locations))


# Runner and its loops
RUNNERS = _node('runner', MMENGINE_RUNNERS, _ENGINE)
RUNNER_CONSTRUCTORS = _node('runner constructor',
                            MMENGINE_RUNNER_CONSTRUCTORS, _ENGINE)
LOOPS = _node('loop', MMENGINE_LOOPS, _ENGINE)
HOOKS = _node('hook', MMENGINE_HOOKS, _ENGINE)
LOG_PROCESSORS = _node('log processor', MMENGINE_LOG_PROCESSORS, _ENGINE)

# Data
DATASETS = _node('dataset', MMENGINE_DATASETS, _DATA, _EVALUATION)
DATA_SAMPLERS = _node('data sampler', MMENGINE_DATA_SAMPLERS, _DATA)
TRANSFORMS = _node('transform', MMENGINE_TRANSFORMS, _DATA, _EVALUATION)

# Models
MODELS = _node('model', MMENGINE_MODELS, _MODELS, _EVALUATION)
MODEL_WRAPPERS = _node('model_wrapper', MMENGINE_MODEL_WRAPPERS, _MODELS)
WEIGHT_INITIALIZERS = _node('weight initializer', MMENGINE_WEIGHT_INITIALIZERS,
                            _MODELS, f'{SCOPE}.downstream')

# Optimisation
OPTIMIZERS = _node('optimizer', MMENGINE_OPTIMIZERS, _ENGINE)
OPTIM_WRAPPERS = _node('optim_wrapper', MMENGINE_OPTIM_WRAPPERS, _ENGINE)
OPTIM_WRAPPER_CONSTRUCTORS = _node('optimizer wrapper constructor',
                                   MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
                                   _ENGINE)
PARAM_SCHEDULERS = _node('parameter scheduler', MMENGINE_PARAM_SCHEDULERS,
                         _ENGINE)

# Evaluation and visualisation
METRICS = _node('metric', MMENGINE_METRICS, _EVALUATION)
EVALUATOR = _node('evaluator', MMENGINE_EVALUATOR, _EVALUATION)
VISUALIZERS = _node('visualizer', MMENGINE_VISUALIZERS, _VISUALIZATION)
VISBACKENDS = _node('vis_backend', MMENGINE_VISBACKENDS, _VISUALIZATION)
