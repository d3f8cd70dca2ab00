# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Fetch real data files that Python packages ship, through pip.

Two wheels on PyPI carry small real annotated data (see
``docs``/the reference notes): ``deepforest`` (aerial RGB tree crowns with
Pascal VOC XML boxes, MIT / NEON CC0) and ``stardist`` (a 512x512
fluorescence nuclei image with 125 instance labels, BSD-3). The wheels are
downloaded with ``pip download --no-deps`` (never installed or imported),
checked against pinned SHA-256 digests, and only their data files are
unpacked into the cache::

    $DENSECL_DATA_CACHE (default ~/.cache/densecl_plugin)/
        wheels/<wheel file>
        deepforest-2.1.0/deepforest/data/OSBS_029.png ...
        stardist-0.9.2/stardist/data/images/img2d.tif ...

A later call reuses the unpacked files (or a wheel already in ``wheels/``,
e.g. one copied there on an offline machine).
"""
import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

from ..utils.hashing import file_sha256

#: environment variable that moves the cache
CACHE_ENV = 'DENSECL_DATA_CACHE'


@dataclass(frozen=True)
class WheelData:
    """A pinned wheel and the data files to take from it.

    Attributes:
        name (str): the PyPI project.
        version (str): the pinned version.
        filename (str): the wheel file pip saves.
        sha256 (str): its SHA-256 digest.
        data_dir (str): the folder inside the wheel that holds the data.
        suffixes (tuple[str]): which files of ``data_dir`` to unpack.
        pip_args (tuple[str]): extra ``pip download`` arguments (platform
            pins that make pip pick exactly ``filename`` anywhere).
    """
    name: str
    version: str
    filename: str
    sha256: str
    data_dir: str
    suffixes: Tuple[str, ...]
    pip_args: Tuple[str, ...] = ()


DEEPFOREST = WheelData(
    name='deepforest',
    version='2.1.0',
    filename='deepforest-2.1.0-py3-none-any.whl',
    sha256='8c2798d8e9be7f0004b194fe207b76c1d9fff6e711b3db67b9508dcd5d00ae54',
    data_dir='deepforest/data',
    suffixes=('.png', '.xml', '.csv'))
STARDIST = WheelData(
    name='stardist',
    version='0.9.2',
    filename='stardist-0.9.2-cp311-cp311-manylinux_2_24_x86_64.'
    'manylinux_2_28_x86_64.whl',
    sha256='2316c0feb7bd5621e7a277cb3868df475c338943c591925c420ee3622c42f023',
    data_dir='stardist/data/images',
    suffixes=('.tif', '.jpg'),
    pip_args=('--only-binary=:all:', '--platform', 'manylinux_2_28_x86_64',
              '--python-version', '3.11', '--implementation', 'cp',
              '--abi', 'cp311'))


def data_cache_dir(cache_dir: Optional[str] = None) -> str:
    """The cache root: ``cache_dir``, else ``$DENSECL_DATA_CACHE``, else
    ``~/.cache/densecl_plugin``."""
    root = cache_dir or os.environ.get(CACHE_ENV) or osp.join(
        osp.expanduser('~'), '.cache', 'densecl_plugin')
    os.makedirs(root, exist_ok=True)
    return root


def download_wheel(spec: WheelData, cache_dir: Optional[str] = None,
                   timeout: float = 600) -> str:
    """Return the path of ``spec``'s wheel, downloading it with pip if absent.

    Args:
        spec (WheelData): the pinned wheel.
        cache_dir (str, optional): the cache root. Defaults to
            :func:`data_cache_dir`.
        timeout (float): seconds allowed for ``pip download``.
            Defaults to 600.

    Returns:
        str: the verified wheel file.

    Raises:
        RuntimeError: pip failed, or the file's digest is not the pinned one.
    """
    wheel_dir = osp.join(data_cache_dir(cache_dir), 'wheels')
    os.makedirs(wheel_dir, exist_ok=True)
    path = osp.join(wheel_dir, spec.filename)
    if not osp.isfile(path):
        cmd = [sys.executable, '-m', 'pip', 'download', '--no-deps',
               '--disable-pip-version-check', '--quiet', '-d', wheel_dir,
               *spec.pip_args, f'{spec.name}=={spec.version}']
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired as err:
            raise RuntimeError(f'`{" ".join(cmd)}` timed out') from err
        if proc.returncode != 0 or not osp.isfile(path):
            raise RuntimeError(
                f'could not download {spec.name}=={spec.version} from the '
                f'package index: `{" ".join(cmd)}` exited with '
                f'{proc.returncode}: {proc.stderr.strip()[-800:]}\nOn an '
                f'offline machine, copy {spec.filename} into {wheel_dir}.')
    digest = file_sha256(path)
    if digest != spec.sha256:
        raise RuntimeError(f'{path} has SHA-256 {digest}, expected '
                           f'{spec.sha256} ({spec.name}=={spec.version}); '
                           'delete it to download it again')
    return path


def fetch_wheel_data(spec: WheelData, cache_dir: Optional[str] = None) -> str:
    """Unpack ``spec``'s data files into the cache (once) and return their
    folder.

    Args:
        spec (WheelData): e.g. :data:`DEEPFOREST` or :data:`STARDIST`.
        cache_dir (str, optional): the cache root. Defaults to
            :func:`data_cache_dir`.

    Returns:
        str: ``<cache>/<name>-<version>/<spec.data_dir>``.
    """
    root = data_cache_dir(cache_dir)
    dest = osp.join(root, f'{spec.name}-{spec.version}')
    data_dir = osp.join(dest, spec.data_dir)
    if osp.isfile(osp.join(dest, '.complete')):
        return data_dir
    wheel = download_wheel(spec, cache_dir)
    tmp = tempfile.mkdtemp(prefix=f'.{spec.name}-', dir=root)
    try:
        with zipfile.ZipFile(wheel) as zf:
            members = [n for n in zf.namelist()
                       if n.startswith(spec.data_dir + '/')
                       and n.lower().endswith(spec.suffixes)]
            if not members:
                raise RuntimeError(f'{wheel} has no {spec.suffixes} files '
                                   f'under {spec.data_dir}/')
            zf.extractall(tmp, members)
        open(osp.join(tmp, '.complete'), 'w').close()
        if osp.isdir(dest):  # a partial earlier attempt
            shutil.rmtree(dest)
        try:
            os.replace(tmp, dest)
        except OSError:  # another process finished first
            if not osp.isfile(osp.join(dest, '.complete')):
                raise
    finally:
        if osp.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return data_dir


def deepforest_data_dir(cache_dir: Optional[str] = None) -> str:
    """Folder with deepforest 2.1.0's ``*.png`` tiles and VOC ``*.xml``."""
    return fetch_wheel_data(DEEPFOREST, cache_dir)


def stardist_data_dir(cache_dir: Optional[str] = None) -> str:
    """Folder with stardist 0.9.2's ``img2d.tif`` and ``mask2d.tif``."""
    return fetch_wheel_data(STARDIST, cache_dir)


def fetch_all(cache_dir: Optional[str] = None,
              specs: Sequence[WheelData] = (DEEPFOREST, STARDIST)) -> None:
    """Fetch every data wheel (for CI set-up or before going offline)."""
    for spec in specs:
        fetch_wheel_data(spec, cache_dir)
