# Copyright (c) densecl_plugin contributors. All rights reserved.
"""An unlabeled pool of real photos for self-supervised pre-training.

Every image comes from a package, never from an invented source:

========================  =================================================
source                    images
========================  =================================================
``deepforest`` (wheel)    aerial RGB tiles of the images that the detection
                          set does NOT use (``2019_YELL_2_528000_4978000_
                          image_crop2``, 2299x2472, and the unlabeled
                          ``SOAP_031``), cut at the detection tile size
``scikit-image``          the colour and grey photographs that load offline
                          (:data:`SKIMAGE_PHOTOS`)
``stardist`` (wheel)      ``histo.jpg`` (H&E stain, no labels)
``matplotlib``            ``grace_hopper.jpg`` (its sample data)
``extra``                 caller-given ``(name, RGB array)`` pairs, e.g. the
                          *training* tiles of the segmentation set
========================  =================================================

Images are written as JPEG (quality 95) under ``<out_dir>/<source>/``, each
downscaled so that its longest side is at most ``max_side`` (decoding big
photos would otherwise dominate a CPU pre-training step). The folder is what
:class:`~densecl_plugin.datasets.UnlabeledImageDataset` reads.
"""
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .fetch import deepforest_data_dir, stardist_data_dir
from .sources import read_rgb
from .tiling import resize_image, tile_grid

#: scikit-image photographs that ship in its wheel (no pooch download)
SKIMAGE_PHOTOS: Tuple[str, ...] = (
    'astronaut', 'chelsea', 'coffee', 'rocket', 'immunohistochemistry',
    'hubble_deep_field', 'retina', 'stereo_motorcycle', 'camera', 'moon',
    'coins', 'brick', 'grass', 'gravel', 'clock', 'cell')
#: deepforest images without a role in the detection set
DEEPFOREST_POOL_IMAGES: Tuple[str, ...] = (
    '2019_YELL_2_528000_4978000_image_crop2', 'SOAP_031')


@dataclass
class UnlabeledPool:
    """What :func:`build_unlabeled_pool` wrote.

    Attributes:
        root (str): the pool folder (``data_root`` of the dataset).
        counts (dict[str, int]): images per source.
        files (list[str]): every written file, relative to ``root``.
    """
    root: str
    counts: Dict[str, int] = field(default_factory=dict)
    files: List[str] = field(default_factory=list)

    @property
    def num_images(self) -> int:
        """Images in the pool."""
        return len(self.files)


def to_rgb_uint8(img: np.ndarray, where: str) -> np.ndarray:
    """A grey, RGB or RGBA uint8 array as (H, W, 3) uint8 RGB.

    Args:
        img (ndarray): (H, W), (H, W, 3) or (H, W, 4) uint8.
        where (str): the image's name, for the error message.

    Returns:
        ndarray: (H, W, 3) uint8, C-contiguous.
    """
    if img.dtype != np.uint8:
        raise ValueError(f'{where}: expected a uint8 image, got {img.dtype}')
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    elif img.ndim == 3 and img.shape[2] in (3, 4):
        img = img[..., :3]
    else:
        raise ValueError(f'{where}: expected (H, W), (H, W, 3) or (H, W, 4), '
                         f'got shape {img.shape}')
    return np.ascontiguousarray(img)


def fit_max_side(img: np.ndarray, max_side: int) -> np.ndarray:
    """Downscale ``img`` so that its longest side is at most ``max_side``."""
    h, w = img.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return img
    return resize_image(img, (max(1, round(w * scale)),
                              max(1, round(h * scale))))


def skimage_photos(names: Sequence[str] = SKIMAGE_PHOTOS
                   ) -> Iterable[Tuple[str, np.ndarray]]:
    """scikit-image's photos as ``(name, RGB uint8)``; stereo pairs give
    both views."""
    from skimage import data
    for name in names:
        loaded = getattr(data, name)()
        if name == 'stereo_motorcycle':  # (left, right, disparity)
            yield f'{name}_left', to_rgb_uint8(loaded[0], name)
            yield f'{name}_right', to_rgb_uint8(loaded[1], name)
        else:
            yield name, to_rgb_uint8(loaded, name)


def deepforest_pool_tiles(images: Sequence[str] = DEEPFOREST_POOL_IMAGES,
                          tile_size: int = 200,
                          cache_dir: Optional[str] = None
                          ) -> Iterable[Tuple[str, np.ndarray]]:
    """Tiles of deepforest images (their boxes unused) as ``(name, RGB)``."""
    for name in images:
        image = read_rgb(osp.join(deepforest_data_dir(cache_dir),
                                  f'{name}.png'))
        h, w = image.shape[:2]
        for (x0, y0, x1, y1) in tile_grid(h, w, tile_size):
            yield f'{name}_x{x0}_y{y0}', np.ascontiguousarray(
                image[y0:y1, x0:x1])


def other_package_photos(cache_dir: Optional[str] = None
                         ) -> Iterable[Tuple[str, str, np.ndarray]]:
    """``(source, name, RGB)`` of stardist's ``histo.jpg`` and matplotlib's
    ``grace_hopper.jpg``."""
    yield 'stardist', 'histo', read_rgb(
        osp.join(stardist_data_dir(cache_dir), 'histo.jpg'))
    import matplotlib.cbook as cbook
    path = cbook.get_sample_data('grace_hopper.jpg', asfileobj=False)
    yield 'matplotlib', 'grace_hopper', read_rgb(str(path))


def build_unlabeled_pool(out_dir: str,
                         max_side: int = 256,
                         tile_size: int = 200,
                         deepforest_images: Sequence[str] = (
                             DEEPFOREST_POOL_IMAGES),
                         skimage_names: Sequence[str] = SKIMAGE_PHOTOS,
                         include_other_packages: bool = True,
                         extra: Sequence[Tuple[str, np.ndarray]] = (),
                         cache_dir: Optional[str] = None) -> UnlabeledPool:
    """Write the unlabeled pre-training pool (see the module docstring).

    Args:
        out_dir (str): the pool folder; one sub-folder per source.
        max_side (int): longest side of a written image. Defaults to 256.
        tile_size (int): deepforest tile side in source pixels (use the
            detection set's so both see trees at one scale). Defaults to 200.
        deepforest_images (Sequence[str]): deepforest images to tile.
            Defaults to :data:`DEEPFOREST_POOL_IMAGES`.
        skimage_names (Sequence[str]): scikit-image photos.
            Defaults to :data:`SKIMAGE_PHOTOS`.
        include_other_packages (bool): add stardist's ``histo.jpg`` and
            matplotlib's ``grace_hopper.jpg``. Defaults to True.
        extra (Sequence[tuple[str, ndarray]]): more ``(name, RGB uint8)``
            images, written under ``extra/``. Defaults to ().
        cache_dir (str, optional): the data cache root (wheels).
            Defaults to None.

    Returns:
        UnlabeledPool: the folder, counts per source and the files.
    """
    if max_side < 8:
        raise ValueError(f'max_side must be >= 8, got {max_side}')
    pool = UnlabeledPool(root=out_dir)

    def write(source: str, name: str, img: np.ndarray) -> None:
        img = fit_max_side(to_rgb_uint8(img, f'{source}/{name}'), max_side)
        rel = osp.join(source, f'{name}.jpg')
        path = osp.join(out_dir, rel)
        os.makedirs(osp.dirname(path), exist_ok=True)
        if not cv2.imwrite(path, img[..., ::-1],
                           [cv2.IMWRITE_JPEG_QUALITY, 95]):
            raise OSError(f'could not write {path}')
        pool.files.append(rel)
        pool.counts[source] = pool.counts.get(source, 0) + 1

    for name, img in deepforest_pool_tiles(deepforest_images, tile_size,
                                           cache_dir):
        write('deepforest', name, img)
    for name, img in skimage_photos(skimage_names):
        write('skimage', name, img)
    if include_other_packages:
        for source, name, img in other_package_photos(cache_dir):
            write(source, name, img)
    for name, img in extra:
        write('extra', name, img)
    if not pool.files:
        raise ValueError('the unlabeled pool is empty: pass at least one '
                         'source')
    return pool
