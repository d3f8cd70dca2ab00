# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Global embeddings of a folder of images (``tools/analysis/embed.py``).

Every image under a folder (recursively, sorted, as
:class:`~densecl_plugin.datasets.UnlabeledImageDataset` lists them) is read
as the train pipeline reads it (``mmcv.imread``: BGR), its shorter side
resized to ``size`` (bilinear) and centre-cropped to ``size x size``, then
normalised by the model's own data preprocessor (BGR -> RGB, ImageNet mean
and std) and encoded in eval mode (BatchNorm uses its running statistics).

Two embeddings (``feature``):

- ``'c5'`` (the default): the backbone's last map averaged over its cells,
  ``(N, C)`` (C = 512 for ResNet-18, 2048 for ResNet-50). It is what a
  downstream task inherits; the neck is dropped after pre-training.
- ``'neck'``: the neck's global embedding (the MLP projection the
  contrastive loss saw, ``(N, D)``, unnormalised), for DenseCL and MoCo v2.

Written to ``out_dir``: ``embeddings.npy`` (float32, one row per image),
``files.txt`` (the image paths relative to the folder, one a line, in the
rows' order) and ``embed.json`` (the settings).
"""
import json
import os
import os.path as osp
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.config import Config
from torch import Tensor, nn

from .view_pair_probe import list_images

#: the embeddings :func:`embed_images` computes
FEATURES = ('c5', 'neck')


def load_image(path: str, size: int) -> Tensor:
    """An image file as the model's input: ``(3, size, size)`` uint8 BGR.

    Args:
        path (str): the image file.
        size (int): the shorter side is resized to ``size`` (bilinear), then
            the centre ``size x size`` is cropped (offsets
            ``(h - size) // 2``, ``(w - size) // 2``).

    Returns:
        Tensor: uint8 ``(3, size, size)``, BGR as ``LoadImageFromFile``.

    Raises:
        ValueError: a file that does not decode as an image.
    """
    import mmcv
    try:
        img = mmcv.imread(path)  # (H, W, 3) BGR uint8
    except Exception as err:  # mmcv raises on some corrupt files
        raise ValueError(f'cannot read image {path!r}: {err}') from err
    if img is None:
        raise ValueError(f'cannot read image {path!r}: not a decodable '
                         'image file')
    h, w = img.shape[:2]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    img = mmcv.imresize(img, (nw, nh), interpolation='bilinear')
    top, left = (nh - size) // 2, (nw - size) // 2
    img = img[top:top + size, left:left + size]
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)


def preprocess(model: nn.Module, images: Sequence[Tensor]) -> Tensor:
    """Images of :func:`load_image` through ``model``'s data preprocessor.

    Returns:
        Tensor: float ``(N, 3, H, W)``, normalised, RGB.
    """
    return model.data_preprocessor({'inputs': [list(images)]},
                                   False)['inputs'][0]


@torch.no_grad()
def embed_images(model: nn.Module, paths: Sequence[str],
                 feature: str = 'c5', size: int = 224, batch_size: int = 32,
                 progress: Optional[Callable[[int], Any]] = None
                 ) -> np.ndarray:
    """Global embeddings of image files (see the module doc).

    Args:
        model (nn.Module): a pre-training model (``data_preprocessor``,
            ``extract_feat``; a neck for ``'neck'``). It is put in eval mode.
        paths (Sequence[str]): image files.
        feature (str): one of :data:`FEATURES`. Defaults to ``'c5'``.
        size (int): input side. Defaults to 224.
        batch_size (int): images per forward pass. Defaults to 32.
        progress (Callable[[int], Any], optional): called with the number of
            images done after each batch. Defaults to None.

    Returns:
        np.ndarray: float32 ``(len(paths), C or D)``.
    """
    if feature not in FEATURES:
        raise ValueError(f'feature must be one of {FEATURES}, got '
                         f'{feature!r}')
    if feature == 'neck' and getattr(model, 'neck', None) is None:
        raise ValueError(f'{type(model).__name__} has no neck: use '
                         "feature='c5'")
    if size < 32 or batch_size < 1:
        raise ValueError(f'size must be >= 32 (one C5 cell) and batch_size '
                         f'>= 1, got {size} and {batch_size}')
    model.eval()
    rows: List[np.ndarray] = []
    for i in range(0, len(paths), batch_size):
        x = preprocess(model, [load_image(p, size)
                               for p in paths[i:i + batch_size]])
        feats = model.extract_feat(x)  # backbone maps, C5 last
        if feature == 'c5':
            emb = feats[-1].float().mean(dim=(2, 3))  # (B, C)
        else:
            emb = model.neck(feats)[0].float()  # (B, D)
        rows.append(emb.cpu().numpy())
        if progress is not None:
            progress(min(i + batch_size, len(paths)))
    return np.concatenate(rows).astype(np.float32)


def embed_folder(config: Union[str, Config], checkpoint: str, folder: str,
                 out_dir: str, feature: str = 'c5', size: int = 224,
                 batch_size: int = 32, device: str = 'cpu',
                 log: Callable[[str], Any] = print) -> Dict[str, Any]:
    """Write the embeddings of every image under ``folder`` to ``out_dir``.

    Args:
        config (str | Config): the pre-training config (the model).
        checkpoint (str): its checkpoint, or ``'random'`` (the config's
            random init).
        folder (str): the image folder (searched recursively).
        out_dir (str): where ``embeddings.npy``, ``files.txt`` and
            ``embed.json`` go (created).
        feature (str): see :func:`embed_images`. Defaults to ``'c5'``.
        size (int): input side. Defaults to 224.
        batch_size (int): Defaults to 32.
        device (str): Defaults to ``'cpu'``.
        log (Callable[[str], Any]): where the summary line goes. Defaults to
            ``print``.

    Returns:
        dict: the written paths (``embeddings``, ``files``, ``settings``),
        ``shape`` and the settings.

    Raises:
        FileNotFoundError: a missing folder, one with no images, or a
            missing checkpoint.
        ValueError: an image that does not decode (named), a bad
            ``feature`` or ``size``.
    """
    from densecl_plugin.apis.inference import build_model, load_config
    if feature not in FEATURES:  # before the model is built
        raise ValueError(f'feature must be one of {FEATURES}, got '
                         f'{feature!r}')
    paths = list_images(folder)
    model = build_model(load_config(config), checkpoint, device)
    emb = embed_images(model, paths, feature, size, batch_size)
    os.makedirs(out_dir, exist_ok=True)
    files = [osp.relpath(p, folder) for p in paths]
    out = dict(embeddings=osp.join(out_dir, 'embeddings.npy'),
               files=osp.join(out_dir, 'files.txt'),
               settings=osp.join(out_dir, 'embed.json'))
    np.save(out['embeddings'], emb)
    with open(out['files'], 'w') as f:
        f.write(''.join(name + '\n' for name in files))
    settings = dict(
        config=config if isinstance(config, str) else config.filename,
        checkpoint=checkpoint, folder=osp.abspath(folder), feature=feature,
        size=size, images=len(paths), dim=int(emb.shape[1]))
    with open(out['settings'], 'w') as f:
        json.dump(settings, f, indent=1)
    log(f'{out["embeddings"]}: {emb.shape[0]} x {emb.shape[1]} {feature} '
        f'embeddings of the images under {folder} ({size} px); file order in '
        f'{out["files"]}')
    return dict(out, shape=tuple(emb.shape), **settings)
