# Copyright (c) densecl_plugin contributors. All rights reserved.
import importlib.metadata

import pytest

from densecl_plugin.utils import dependency
from densecl_plugin.utils.dependency import (DependencyError,
                                             check_dependencies, mmcv_has_ops)


def test_installed_stack_is_supported():
    check_dependencies()  # the environment `make test` builds
    assert mmcv_has_ops()


@pytest.mark.parametrize('dist,version,expect', [
    ('mmcv', '2.2.0', 'mmcv==2.2.0 is installed, but densecl_plugin needs '
     '2.1.0 <= mmcv < 2.2.0'),
    ('mmengine', '0.9.1', 'mmengine==0.9.1 is installed'),
    ('mmdet', '3.2.0', 'mmdet==3.2.0 is installed, but densecl_plugin needs '
     '3.3.0 <= mmdet < 3.4.0'),
    ('mmsegmentation', '1.3.0', 'mmsegmentation==1.3.0'),
])
def test_version_out_of_range_names_package_and_fix(monkeypatch, dist,
                                                     version, expect):
    real = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata, 'version',
        lambda name: version if name == dist else real(name))
    with pytest.raises(DependencyError) as err:
        check_dependencies()
    assert expect in str(err.value)
    assert 'make test' in str(err.value)  # says how to fix it


def test_missing_required_package(monkeypatch):
    real = importlib.metadata.version

    def fake(name):
        if name == 'mmengine':
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, 'version', fake)
    with pytest.raises(DependencyError, match='mmengine is not installed'):
        check_dependencies()


def test_mmcv_without_ops(monkeypatch):
    monkeypatch.setattr(dependency, 'mmcv_has_ops', lambda: False)
    with pytest.raises(DependencyError, match=r'mmcv\._ext is missing'):
        check_dependencies()


def test_import_runs_the_guard(monkeypatch):
    """`import densecl_plugin` raises the guard's error on a bad stack."""
    import sys
    real = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata, 'version',
        lambda name: '2.2.0' if name == 'mmcv' else real(name))
    monkeypatch.delenv('DENSECL_PLUGIN_SKIP_VERSION_CHECK', raising=False)
    saved = {k: v for k, v in sys.modules.items()
             if k == 'densecl_plugin' or k.startswith('densecl_plugin.')}
    for k in saved:
        del sys.modules[k]
    try:
        # a fresh import defines a fresh DependencyError class: match its base
        with pytest.raises(ImportError, match='mmcv==2.2.0'):
            import densecl_plugin  # noqa: F401
    finally:
        for k in list(sys.modules):
            if k == 'densecl_plugin' or k.startswith('densecl_plugin.'):
                del sys.modules[k]
        sys.modules.update(saved)
