# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The installed package finds its configs and tools the way mim does."""
import importlib.metadata
import os.path as osp

import pytest

import densecl_plugin

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _mim_installed_path() -> str:
    """openmim's ``get_installed_path``: <distribution location>/<package>."""
    dist = importlib.metadata.distribution('densecl_plugin')
    return osp.join(str(dist.locate_file('')), 'densecl_plugin')


@pytest.mark.parametrize('rel', [
    '.mim/tools/train.py',
    '.mim/configs/densecl/densecl_resnet50_8xb32-coslr-200e_in1k.py',
    '.mim/configs/mocov2/mocov2_resnet50_8xb32-coslr-200e_in1k.py',
    '.mim/model-index.yml',
])
def test_mim_finds_tools_and_configs(rel):
    path = osp.join(_mim_installed_path(), rel)
    assert osp.isfile(path), f'{path} missing: `mim train densecl_plugin` ' \
        'would not find it (re-run tools/setup_env.sh)'


def test_package_is_this_checkout():
    assert osp.realpath(densecl_plugin.__file__).startswith(
        osp.realpath(REPO))


def test_requirements_are_parsed_into_install_requires():
    reqs = importlib.metadata.requires('densecl_plugin')
    pinned = {r.split(';')[0].replace(' ', '') for r in reqs}
    for pin in ('mmengine==0.10.7', 'mmcv==2.1.0', 'mmdet==3.3.0',
                'mmsegmentation==1.2.2'):
        assert pin in pinned
