# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The transforms of an earlier git revision, importable beside today's.

The data-pipeline benchmark (:mod:`.pipeline`) compares today's view
transforms with those of ``--baseline-rev`` side by side:
:func:`load_baseline_transforms` writes that revision's files (``git show``)
to a temporary package with a registry of its own, and a :class:`Variant`
names which of the two a measurement runs.
"""
import os
import os.path as osp
import subprocess
import sys
import tempfile
import types
from typing import NamedTuple, Optional, Sequence

from densecl_plugin.datasets import transforms as current_transforms

#: the repository (the git history of ``--baseline-rev``)
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.realpath(__file__))))


#: what a baseline revision contributes (paths relative to the repository)
_BASELINE_DIRS = ('densecl_plugin/datasets/transforms', )


_BASELINE_FILES = ('densecl_plugin/datasets/self_sup_data_sample.py', )


def _git(args: Sequence[str], root: str = ROOT) -> str:
    try:
        return subprocess.run(['git', *args], cwd=root, check=True,
                              capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        err = getattr(e, 'stderr', '') or str(e)
        raise RuntimeError(f'git {" ".join(args)} failed in {root}: '
                           f'{err.strip()}') from e


def load_baseline_transforms(rev: str,
                             root: str = ROOT) -> types.ModuleType:
    """Import the transforms package as it was at git revision ``rev``.

    The files of ``densecl_plugin/datasets/transforms`` (and the data sample
    they import) at ``rev`` are written to a temporary package and imported
    with a registry of their own (parented to MMEngine's), so that they
    neither clash with nor replace the current transforms.

    Args:
        rev (str): A git revision, e.g. a commit hash.
        root (str): The repository. Defaults to this checkout.

    Returns:
        module: The baseline ``transforms`` package (``build_pipeline``,
        ``RandomResizedCrop``, ...).

    Raises:
        RuntimeError: if git or the revision is not available.
    """
    from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
    from mmengine.registry import Registry
    sha = _git(['rev-parse', '--short=10', f'{rev}^{{commit}}'], root).strip()
    pkg = f'densecl_baseline_{sha}'
    if pkg in sys.modules:
        return sys.modules[f'{pkg}.transforms']
    folder = tempfile.mkdtemp(prefix='densecl_baseline_')
    files = list(_BASELINE_FILES)
    for d in _BASELINE_DIRS:
        files += [f for f in _git(['ls-tree', '--name-only', sha, d + '/'],
                                  root).split() if f.endswith('.py')]
    for f in files:
        rel = osp.relpath(f, 'densecl_plugin/datasets')
        dst = osp.join(folder, pkg, rel)
        os.makedirs(osp.dirname(dst), exist_ok=True)
        with open(dst, 'w') as fh:
            fh.write(_git(['show', f'{sha}:{f}'], root))
    open(osp.join(folder, pkg, '__init__.py'), 'a').close()
    registry = types.ModuleType('densecl_plugin.registry')
    registry.TRANSFORMS = Registry('transform', parent=MMENGINE_TRANSFORMS,
                                   scope=pkg)
    saved = sys.modules['densecl_plugin.registry']
    sys.modules['densecl_plugin.registry'] = registry
    sys.path.insert(0, folder)
    try:
        __import__(f'{pkg}.transforms')
    finally:
        sys.modules['densecl_plugin.registry'] = saved
        sys.path.remove(folder)
    return sys.modules[f'{pkg}.transforms']


def build_pipeline(pipeline_cfg: Sequence[dict],
                   transforms: types.ModuleType = current_transforms):
    """Build a pipeline with ``transforms`` (current or a baseline), in that
    package's registry scope.

    Under a default scope (a runner's, or one an earlier caller left),
    MMEngine resolves ``type`` names through that scope's registry first; so
    each package's pipeline is built with its own scope as the default.

    Args:
        pipeline_cfg (Sequence[dict]): Transform configs.
        transforms (module): The transforms package. Defaults to the
            current one.

    Returns:
        Compose: The pipeline.
    """
    from mmengine.registry import DefaultScope
    scope = transforms.__name__.split('.')[0]
    with DefaultScope.overwrite_default_scope(scope):
        return transforms.build_pipeline(pipeline_cfg)


class Variant(NamedTuple):
    """One pipeline implementation to measure.

    Attributes:
        name (str): Its name in the results.
        rev (str, optional): Git revision of the transforms; None for the
            current checkout.
    """
    name: str
    rev: Optional[str] = None


def transforms_of(variant: Variant) -> types.ModuleType:
    """The transforms package ``variant`` runs: today's, or its revision's."""
    if variant.rev is None:
        return current_transforms
    return load_baseline_transforms(variant.rev)
