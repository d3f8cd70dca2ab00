# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Checks that the installed OpenMMLab stack is one this plugin supports.

The check reads package metadata and looks for mmcv's compiled ops on disk; it
imports none of the packages it checks, so ``import densecl_plugin`` stays
cheap.
"""
import glob
import importlib.metadata
import importlib.util
import os
from typing import Dict, Optional, Tuple

from packaging.version import Version

#: distribution name -> (minimum inclusive, maximum exclusive, required)
SUPPORTED: Dict[str, Tuple[str, str, bool]] = {
    'mmengine': ('0.10.7', '0.11.0', True),
    'mmcv': ('2.1.0', '2.2.0', True),
    'mmdet': ('3.3.0', '3.4.0', False),
    'mmsegmentation': ('1.2.2', '1.3.0', False),
}

_FIX = ('Run `make test` (or `bash tools/setup_env.sh`) in the densecl_plugin '
        'checkout to create a .venv with the supported stack, or install it '
        'yourself: pip install -r requirements/runtime.txt, with mmcv built '
        'from source: MMCV_WITH_OPS=1 pip install --no-build-isolation '
        '"setuptools<70" mmcv==2.1.0. Set DENSECL_PLUGIN_SKIP_VERSION_CHECK=1 '
        'to bypass this check at your own risk.')


class DependencyError(ImportError):
    """Raised when the OpenMMLab stack is outside the supported range."""


def _installed(dist: str) -> Optional[str]:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def mmcv_has_ops() -> bool:
    """Whether mmcv's compiled extension ``mmcv._ext`` exists on disk."""
    spec = importlib.util.find_spec('mmcv')
    if spec is None or not spec.submodule_search_locations:
        return False
    return any(
        glob.glob(os.path.join(loc, '_ext*'))
        for loc in spec.submodule_search_locations)


def check_dependencies() -> None:
    """Raise :class:`DependencyError` naming every unsupported package.

    Raises:
        DependencyError: when a required package is missing, any checked
            package is outside its supported range, or mmcv has no ops.
    """
    problems = []
    for dist, (low, high, required) in SUPPORTED.items():
        found = _installed(dist)
        if found is None:
            if required:
                problems.append(f'{dist} is not installed '
                                f'(need {low} <= {dist} < {high})')
            continue
        if not Version(low) <= Version(found) < Version(high):
            problems.append(f'{dist}=={found} is installed, but '
                            f'densecl_plugin needs {low} <= {dist} < {high}')
    if _installed('mmcv') is not None and not mmcv_has_ops():
        problems.append('mmcv was built without its compiled ops '
                        '(mmcv._ext is missing): mmdet/mmseg need them; '
                        'rebuild with MMCV_WITH_OPS=1')
    if problems:
        raise DependencyError('densecl_plugin cannot run with this '
                              'environment:\n  - ' + '\n  - '.join(problems) +
                              '\n' + _FIX)
