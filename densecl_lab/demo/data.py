# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Stage 1 of the demo: real data from package wheels, in three layouts.

:func:`prepare_demo_data` fetches the deepforest and stardist wheels through
pip (:mod:`densecl_lab.data_prep.fetch`, cached under ``cache_dir``) and
writes, under ``data_dir``:

- ``VOCdevkit/``: deepforest tree crowns as a VOC07+12 detection set (200 px
  tiles of ``OSBS_029``, ``SOAP_061`` and the smaller YELL crop; boxes cut by
  a tile border are clipped and kept when >= 50 % of their area is inside);
- ``nuclei/``: the stardist nuclei image and mask as 128 px tiles,
  background / nucleus, in mmseg's ``img_dir`` / ``ann_dir`` layout;
- ``unlabeled/``: the pre-training pool: aerial tiles of the deepforest
  images the detection set does not use, scikit-image / stardist /
  matplotlib photos, and the *training* tiles of the nuclei set;
- ``manifest.json``: counts, splits and the held-out images on which the
  demo measures correspondence accuracy (detection test tiles, nuclei val
  tiles and :data:`HELD_OUT_PHOTOS`, none of them in the pool).
"""
import json
import os
import os.path as osp
import shutil
from typing import Any, Dict, List, Optional

#: the seed of every split and tiling choice in the demo data
DATA_SEED = 0
#: detection tile side (source pixels; written at that size)
DET_TILE = 200
#: nuclei tile side
SEG_TILE = 128
#: deepforest tile side in the unlabeled pool
POOL_TILE = 128
#: share of tiles held out for evaluation
VAL_FRACTION = 0.25
#: scikit-image photos kept out of the pool (correspondence evaluation)
HELD_OUT_PHOTOS = ('astronaut', 'coffee')
#: what the manifest must hold to be reused
_MANIFEST_KEYS = ('detection', 'segmentation', 'unlabeled', 'held_out')
#: sub-folders of ``data_dir`` this stage writes (and --force deletes)
SUBDIRS = ('VOCdevkit', 'nuclei', 'unlabeled', 'held_out')


def manifest_path(data_dir: str) -> str:
    """Where :func:`prepare_demo_data` writes its manifest."""
    return osp.join(data_dir, 'manifest.json')


def load_manifest(data_dir: str) -> Optional[Dict[str, Any]]:
    """The manifest of a finished data stage, or None (absent, unreadable,
    incomplete, or its files are gone)."""
    path = manifest_path(data_dir)
    try:
        with open(path) as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return None
    if not all(k in manifest for k in _MANIFEST_KEYS):
        return None
    paths = [manifest['detection']['data_root'],
             manifest['segmentation']['data_root'],
             manifest['unlabeled']['root'], *manifest['held_out']]
    return manifest if all(osp.exists(p) for p in paths) else None


def held_out_images(manifest: Dict[str, Any],
                    limit: Optional[int] = None) -> List[str]:
    """The manifest's held-out images, the first ``limit`` of them.

    Args:
        manifest (dict): as :func:`prepare_demo_data` returns it.
        limit (int, optional): Defaults to None (all).
    """
    images = list(manifest['held_out'])
    return images[:limit] if limit else images


def prepare_demo_data(data_dir: str, cache_dir: Optional[str] = None,
                      force: bool = False,
                      show_progress: bool = False) -> Dict[str, Any]:
    """Build (or reuse) the three demo data sets.

    Args:
        data_dir (str): where the layouts go (e.g. ``data/demo``).
        cache_dir (str, optional): where wheels are cached (e.g.
            ``data/cache``). Defaults to None
            (:func:`~densecl_lab.data_prep.data_cache_dir`).
        force (bool): rebuild even if a complete manifest exists.
            Defaults to False.
        show_progress (bool): a bar over the build steps. Defaults to False.

    Returns:
        dict: the manifest (also written to ``manifest.json``), with
        ``reused`` True when nothing was rebuilt.
    """
    if not force:
        manifest = load_manifest(data_dir)
        if manifest is not None:
            return dict(manifest, reused=True)
    import cv2

    from densecl_lab.data_prep import build_voc_detection, fetch_all
    from densecl_lab.data_prep.binary_segmentation import \
        build_binary_segmentation
    from densecl_lab.data_prep.segmentation_layouts import \
        nuclei_semantic_tiles
    from densecl_lab.data_prep.unlabeled_pool import (SKIMAGE_PHOTOS,
                                                      build_unlabeled_pool,
                                                      skimage_photos)
    from .demo_progress_hook import progress_bar

    for sub in SUBDIRS:  # never mix files of two builds
        shutil.rmtree(osp.join(data_dir, sub), ignore_errors=True)
    os.makedirs(data_dir, exist_ok=True)
    bar = progress_bar(4, 'data', show_progress)

    def step(what: str) -> None:
        if bar is not None:
            bar.set_postfix_str(what, refresh=False)
            bar.update(1)

    fetch_all(cache_dir)  # pip download of the deepforest / stardist wheels
    step('wheels')
    det = build_voc_detection(data_dir, tile_size=DET_TILE,
                              val_fraction=VAL_FRACTION, seed=DATA_SEED,
                              cache_dir=cache_dir)
    step('tree tiles')
    seg = build_binary_segmentation(osp.join(data_dir, 'nuclei'),
                                    tile_size=SEG_TILE,
                                    val_fraction=VAL_FRACTION,
                                    seed=DATA_SEED, cache_dir=cache_dir)
    step('nuclei tiles')
    # the same call, so the same split: only training tiles join the pool
    seg_tiles = nuclei_semantic_tiles(SEG_TILE, None, VAL_FRACTION,
                                      DATA_SEED, cache_dir)
    pool_photos = tuple(n for n in SKIMAGE_PHOTOS
                        if n not in HELD_OUT_PHOTOS)
    pool = build_unlabeled_pool(
        osp.join(data_dir, 'unlabeled'), tile_size=POOL_TILE,
        skimage_names=pool_photos,
        extra=[(f'nuclei_{name}', img)
               for name, img, _ in seg_tiles['train']],
        cache_dir=cache_dir)
    step('unlabeled pool')
    if bar is not None:
        bar.close()

    held_out = [osp.join(det.data_root, 'VOC2007', 'JPEGImages',
                         f'{name}.jpg')
                for name in det.splits['VOC2007/test']]
    held_out += [osp.join(seg.data_root, 'img_dir', 'val', f'{name}.png')
                 for name in seg.splits['val']]
    photo_dir = osp.join(data_dir, 'held_out')
    os.makedirs(photo_dir, exist_ok=True)
    for name, img in skimage_photos(HELD_OUT_PHOTOS):
        path = osp.join(photo_dir, f'{name}.jpg')
        cv2.imwrite(path, img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        held_out.append(path)

    manifest = dict(
        seed=DATA_SEED,
        detection=dict(data_root=det.data_root, classes=list(det.classes),
                       tile=DET_TILE,
                       images={k: len(v) for k, v in det.splits.items()},
                       boxes=det.num_boxes),
        segmentation=dict(data_root=seg.data_root, classes=list(seg.classes),
                          tile=SEG_TILE,
                          images={k: len(v) for k, v in seg.splits.items()},
                          foreground_fraction=seg.foreground_fraction),
        unlabeled=dict(root=pool.root, images=pool.num_images,
                       per_source=pool.counts, tile=POOL_TILE),
        held_out=held_out)
    with open(manifest_path(data_dir), 'w') as f:
        json.dump(manifest, f, indent=1)
    return dict(manifest, reused=False)
