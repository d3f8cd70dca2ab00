# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Shared fixtures: small sets of *real* photos that packages ship.

scikit-image ships a handful of real colour photographs that load offline;
they are written once per session as JPEG files so that tests exercise the
real decode path (``LoadImageFromFile``) on real content.
"""
import os
import os.path as osp
from typing import List

import numpy as np
import pytest

#: scikit-image's colour photographs that load without a download
SKIMAGE_PHOTOS = ('astronaut', 'chelsea', 'coffee', 'rocket', 'immunohistochemistry',
                  'hubble_deep_field', 'retina')


def write_skimage_photos(folder: str, names=SKIMAGE_PHOTOS, max_side: int = 256) -> List[str]:
    """Write scikit-image's colour photos as JPEGs (BGR, longest side <= max_side).

    Returns:
        list[str]: the written file paths, in ``names`` order.
    """
    import cv2
    from skimage import data
    os.makedirs(folder, exist_ok=True)
    paths = []
    for name in names:
        img = np.ascontiguousarray(getattr(data, name)()[..., :3])  # RGB uint8
        scale = max_side / max(img.shape[:2])
        if scale < 1:
            img = cv2.resize(img, (round(img.shape[1] * scale), round(img.shape[0] * scale)),
                             interpolation=cv2.INTER_AREA)
        path = osp.join(folder, f'{name}.jpg')
        cv2.imwrite(path, img[..., ::-1])
        paths.append(path)
    return paths


@pytest.fixture(scope='session')
def real_image_dir(tmp_path_factory) -> str:
    """A folder of 7 real colour photos (JPEG, longest side 256 px)."""
    folder = str(tmp_path_factory.mktemp('real_photos'))
    write_skimage_photos(folder)
    return folder


@pytest.fixture(scope='session')
def real_image_paths(real_image_dir) -> List[str]:
    """The sorted file paths in :func:`real_image_dir`."""
    return sorted(osp.join(real_image_dir, f) for f in os.listdir(real_image_dir))


@pytest.fixture(scope='session')
def slurm_cluster():
    """A real one-node Slurm cluster (``tests/slurm_cluster.py``), stopped at
    the end of the session; the test skips, saying why, where it cannot
    start."""
    from slurm_cluster import session_cluster
    yield from session_cluster()
