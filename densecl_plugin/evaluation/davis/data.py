# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Reading and writing the DAVIS-2017 layout.

::

    <root>/JPEGImages/<resolution>/<seq>/00000.jpg ...
    <root>/Annotations/<resolution>/<seq>/00000.png ...   (palette PNGs)
    <root>/ImageSets/2017/{train,val}.txt                  (one seq per line)

Annotation PNGs are palette ("P" mode) images whose pixel values are object
ids (0 background, 255 void); predictions are written the same way, with the
DAVIS (= PASCAL VOC) palette, so the official ``davis2017-evaluation`` and any
viewer read them.
"""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
from PIL import Image

_IMG_EXTS = ('.jpg', '.jpeg', '.png')


def davis_palette() -> List[int]:
    """The 256-colour DAVIS / PASCAL VOC palette as a flat RGB list.

    Colour ``i`` spreads the bits of ``i`` over R, G and B from the most
    significant bit down: 1 is (128, 0, 0), 2 is (0, 128, 0), 3 is
    (128, 128, 0) ...

    Returns:
        list[int]: 768 values ``[r0, g0, b0, r1, ...]``.
    """
    palette = []
    for i in range(256):
        r = g = b = 0
        c = i
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette += [r, g, b]
    return palette


def read_mask(path: str) -> np.ndarray:
    """Read an index mask (palette or greyscale PNG) as ``(H, W)`` uint8.

    Args:
        path (str): the PNG file.

    Returns:
        np.ndarray: object ids.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'mask file not found: {path}')
    with Image.open(path) as img:
        if img.mode not in ('P', 'L'):
            raise ValueError(f'{path}: expected a palette (P) or greyscale '
                             f'(L) PNG of object ids, got mode {img.mode!r}')
        return np.array(img, dtype=np.uint8)


def write_mask(path: str, mask: np.ndarray) -> None:
    """Write an ``(H, W)`` index mask as a DAVIS palette PNG.

    Args:
        path (str): the output file; folders are created.
        mask (np.ndarray): object ids in ``[0, 255]``.
    """
    if mask.ndim != 2:
        raise ValueError(f'mask must be (H, W), got shape {mask.shape}')
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    img = Image.fromarray(mask.astype(np.uint8), mode='P')
    img.putpalette(davis_palette())
    img.save(path)


def list_sequences(root: str, split: str = 'val',
                   year: str = '2017') -> List[str]:
    """The sequences of ``<root>/ImageSets/<year>/<split>.txt``.

    Args:
        root (str): the DAVIS root.
        split (str): ``'val'``, ``'train'``, ... Defaults to ``'val'``.
        year (str): Defaults to ``'2017'``.

    Returns:
        list[str]: sequence names, in file order.
    """
    path = osp.join(root, 'ImageSets', year, f'{split}.txt')
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'DAVIS sequence list not found: {path} (expected '
            f'<root>/ImageSets/{year}/{split}.txt with one sequence per line)')
    with open(path) as f:
        seqs = [line.strip() for line in f if line.strip()]
    if not seqs:
        raise ValueError(f'DAVIS sequence list {path} is empty')
    return seqs


def _sorted_files(folder: str, exts: Sequence[str]) -> List[str]:
    if not osp.isdir(folder):
        raise FileNotFoundError(f'DAVIS folder not found: {folder}')
    names = sorted(n for n in os.listdir(folder)
                   if osp.splitext(n)[1].lower() in exts)
    if not names:
        raise FileNotFoundError(f'no {"/".join(exts)} files in {folder}')
    return [osp.join(folder, n) for n in names]


def frame_paths(root: str, seq: str, resolution: str = '480p') -> List[str]:
    """Sorted frame paths of one sequence.

    Args:
        root (str): the DAVIS root.
        seq (str): the sequence name.
        resolution (str): ``'480p'`` or ``'Full-Resolution'``. Defaults to
            ``'480p'``.

    Returns:
        list[str]: ``<root>/JPEGImages/<resolution>/<seq>/*.jpg``.
    """
    return _sorted_files(osp.join(root, 'JPEGImages', resolution, seq),
                         _IMG_EXTS)


def annotation_paths(root: str, seq: str,
                     resolution: str = '480p') -> List[str]:
    """Sorted annotation paths of one sequence (``Annotations/<res>/<seq>``).

    Args:
        root (str): the DAVIS (or results) root.
        seq (str): the sequence name.
        resolution (str): Defaults to ``'480p'``.

    Returns:
        list[str]: the PNG files.
    """
    return _sorted_files(osp.join(root, 'Annotations', resolution, seq),
                         ('.png', ))


def load_masks(paths: Sequence[str],
               frame_names: Optional[Sequence[str]] = None) -> np.ndarray:
    """Read index masks as one ``(T, H, W)`` array.

    Args:
        paths (Sequence[str]): PNG files.
        frame_names (Sequence[str], optional): when given, the stems the
            files must have, in order (to catch missing frames).

    Returns:
        np.ndarray: ``(T, H, W)`` uint8.
    """
    if frame_names is not None:
        stems = [osp.splitext(osp.basename(p))[0] for p in paths]
        missing = sorted(set(frame_names) - set(stems))
        if missing:
            folder = osp.dirname(paths[0]) if paths else '?'
            raise FileNotFoundError(
                f'{folder}: missing masks for frames {missing[:5]}'
                f'{" ..." if len(missing) > 5 else ""}')
        by_stem = dict(zip(stems, paths))
        paths = [by_stem[n] for n in frame_names]
    masks = [read_mask(p) for p in paths]
    shapes = {m.shape for m in masks}
    if len(shapes) != 1:
        raise ValueError(f'masks of different sizes {sorted(shapes)} in '
                         f'{osp.dirname(paths[0])}')
    return np.stack(masks)


def evaluate_folder(gt_root: str,
                    results_root: str,
                    sequences: Sequence[str],
                    resolution: str = '480p',
                    bound_th: float = 0.008) -> Dict[str, object]:
    """Evaluate predicted palette PNGs against DAVIS ground truth.

    Args:
        gt_root (str): the DAVIS root (``Annotations/<res>/<seq>``).
        results_root (str): the predictions, in the same layout.
        sequences (Sequence[str]): the sequences to evaluate.
        resolution (str): Defaults to ``'480p'``.
        bound_th (float): boundary tolerance. Defaults to 0.008.

    Returns:
        dict: ``global`` (the global row) and ``per_object`` (list of rows),
        see :func:`~densecl_plugin.evaluation.davis.metrics.summarise`.
    """
    from .metrics import evaluate_results
    gt, pred = {}, {}
    for seq in sequences:
        gt_paths = annotation_paths(gt_root, seq, resolution)
        names = [osp.splitext(osp.basename(p))[0] for p in gt_paths]
        gt[seq] = load_masks(gt_paths)
        pred[seq] = load_masks(annotation_paths(results_root, seq, resolution),
                               names)
    global_row, rows = evaluate_results(gt, pred, bound_th, list(sequences))
    return dict(global_row=global_row, per_object=rows)
