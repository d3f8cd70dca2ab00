# Copyright (c) densecl_plugin contributors. All rights reserved.
"""What the dense features learned, as colours: the first three principal
components of C5 (``tools/analysis/dense_pca.py``, the demo's figure).

DINO and DINOv2 show the first principal components of their patch features
as RGB. Here, for each model, the C5 cells of a few images (each image read
and preprocessed as :mod:`.embed` does, at ``size`` px, eval-mode BN) are
pooled into one ``(M, C)`` matrix; a PCA of that matrix (centred, SVD in
float64) gives three components; every cell's three projections, each
min-max scaled over all the images' cells, are its red, green and blue. The
same colour therefore means a similar feature across the images of one
model; colours are not comparable between models (each has its own PCA).
Each component's sign is fixed (its largest loading positive), so the
picture does not flip between runs.

C5 rather than the dense neck's projection: the three pictured models
(random init, MoCo v2, DenseCL) all have it, MoCo v2 has no dense neck, and
C5 is what a downstream task inherits.
"""
import os
import os.path as osp
from typing import Any, Dict, List, NamedTuple, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.config import Config
from torch import Tensor, nn

from .embed import load_image, preprocess

#: the default input side: a 12 x 12 grid of C5 cells
DEFAULT_SIZE = 384


class PCA(NamedTuple):
    """A fitted PCA.

    Attributes:
        mean (Tensor): ``(C, )`` the features' mean.
        components (Tensor): ``(k, C)`` orthonormal rows, by decreasing
            variance, each with its largest-magnitude entry positive.
        explained_ratio (Tensor): ``(k, )`` each component's share of the
            total variance.
    """
    mean: Tensor
    components: Tensor
    explained_ratio: Tensor


def fit_pca(x: Tensor, k: int = 3) -> PCA:
    """PCA of the rows of ``x`` by SVD of the centred matrix (float64).

    Args:
        x (Tensor): ``(M, C)`` features, ``M >= 2``.
        k (int): components kept, ``1 <= k <= min(M, C)``. Defaults to 3.

    Returns:
        PCA: float32 mean, components and explained-variance ratios.
    """
    if x.dim() != 2 or x.shape[0] < 2 or not 1 <= k <= min(x.shape):
        raise ValueError(f'fit_pca needs (M, C) features with M >= 2 and '
                         f'1 <= k <= min(M, C), got {tuple(x.shape)} and '
                         f'k={k}')
    x = x.detach().double()
    mean = x.mean(dim=0)
    _, s, vh = torch.linalg.svd(x - mean, full_matrices=False)
    comps = vh[:k]
    idx = comps.abs().argmax(dim=1)
    signs = torch.sign(comps[torch.arange(k), idx])
    comps = comps * signs[:, None]
    var = s.pow(2)
    ratio = var[:k] / var.sum().clamp_min(1e-300)
    return PCA(mean.float(), comps.float(), ratio.float())


def project(x: Tensor, pca: PCA) -> Tensor:
    """``(x - mean) @ components.T``: ``(M, k)``."""
    return (x.double() - pca.mean.double()) @ pca.components.double().t()


def pca_rgb(maps: Tensor, k: int = 3) -> Tuple[np.ndarray, PCA]:
    """The first three principal components of feature maps as colours.

    Args:
        maps (Tensor): ``(N, C, h, w)`` (one PCA over all ``N * h * w``
            cells).
        k (int): components (3 for RGB; fewer leave the other channels at
            0). Defaults to 3.

    Returns:
        tuple[np.ndarray, PCA]: float32 ``(N, h, w, 3)`` in [0, 1] (each
        component min-max scaled over all cells), and the PCA.
    """
    if maps.dim() != 4:
        raise ValueError(f'pca_rgb needs (N, C, h, w) maps, got '
                         f'{tuple(maps.shape)}')
    n, c, h, w = maps.shape
    cells = maps.detach().float().permute(0, 2, 3, 1).reshape(-1, c)
    pca = fit_pca(cells, k)
    proj = project(cells, pca)  # (M, k)
    lo, hi = proj.min(dim=0).values, proj.max(dim=0).values
    scaled = (proj - lo) / (hi - lo).clamp_min(1e-12)
    rgb = torch.zeros(cells.shape[0], 3, dtype=torch.float64)
    rgb[:, :k] = scaled[:, :3]
    return rgb.reshape(n, h, w, 3).float().numpy(), pca


@torch.no_grad()
def c5_maps(model: nn.Module, paths: Sequence[str],
            size: int = DEFAULT_SIZE) -> Tensor:
    """The C5 maps of image files, eval-mode BN: ``(N, C, size/32,
    size/32)`` (images read as :func:`~.embed.load_image` reads them)."""
    model.eval()
    x = preprocess(model, [load_image(p, size) for p in paths])
    return model.extract_feat(x)[-1].float()


def dense_pca_figure(rows: Dict[str, np.ndarray],
                     explained: Dict[str, Sequence[float]],
                     paths: Sequence[str], out_path: str,
                     size: int = DEFAULT_SIZE) -> str:
    """Draw the images (top row) and each model's PCA colours (a row each).

    Args:
        rows (dict[str, np.ndarray]): label -> ``(N, h, w, 3)`` colours
            (:func:`pca_rgb`), in row order.
        explained (dict[str, Sequence[float]]): label -> the three
            explained-variance ratios (shown beside the label).
        paths (Sequence[str]): the ``N`` images.
        out_path (str): the PNG.
        size (int): the images' side as the models saw them. Defaults to
            :data:`DEFAULT_SIZE`.

    Returns:
        str: ``out_path``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    n = len(paths)
    fig = Figure(figsize=(1.9 * n + 1.6, 1.9 * (len(rows) + 1) + 0.4),
                 dpi=110, layout='constrained')
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(rows) + 1, n, squeeze=False)
    for j, path in enumerate(paths):
        img = load_image(path, size).permute(1, 2, 0).numpy()[..., ::-1]
        axes[0, j].imshow(img)
        axes[0, j].set_title(osp.basename(path)[:22], fontsize=7)
    axes[0, 0].set_ylabel('image', fontsize=9)
    for i, (label, rgb) in enumerate(rows.items(), start=1):
        for j in range(n):
            axes[i, j].imshow(rgb[j], interpolation='nearest')
        share = ' / '.join(f'{100 * r:.0f}' for r in explained[label])
        axes[i, 0].set_ylabel(f'{label}\nPC1-3: {share} %', fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    grid = next(iter(rows.values())).shape[1:3]
    fig.suptitle(f'C5 features: first 3 principal components as RGB\n'
                 f'({size} px, {grid[0]}x{grid[1]} cells; one PCA per row)',
                 fontsize=9)
    os.makedirs(osp.dirname(osp.abspath(out_path)), exist_ok=True)
    fig.savefig(out_path)
    return out_path


ModelSpec = Tuple[str, Union[str, Config], str]


def dense_pca_checkpoints(models: Sequence[ModelSpec], paths: Sequence[str],
                          out_path: str, size: int = DEFAULT_SIZE
                          ) -> Dict[str, Any]:
    """The figure of :func:`dense_pca_figure` for checkpoints.

    Args:
        models (Sequence[tuple]): ``(label, config, checkpoint)`` per row;
            ``checkpoint`` may be ``'random'`` (the config's random init,
            torch seed 0). Only the backbone is used.
        paths (Sequence[str]): image files (a few: one PCA per model runs
            over all their cells).
        out_path (str): the PNG.
        size (int): input side. Defaults to :data:`DEFAULT_SIZE`.

    Returns:
        dict: ``figure`` (the PNG), ``images``, ``size``, ``grid`` and
        ``explained`` (label -> the three ratios).
    """
    from densecl_plugin.apis.inference import build_model, load_config
    if not paths:
        raise ValueError('dense_pca_checkpoints needs at least one image')
    rows: Dict[str, np.ndarray] = {}
    explained: Dict[str, List[float]] = {}
    for label, config, ckpt in models:
        torch.manual_seed(0)
        model = build_model(load_config(config), ckpt)
        rgb, pca = pca_rgb(c5_maps(model, paths, size))
        rows[label] = rgb
        explained[label] = [round(float(r), 4) for r in pca.explained_ratio]
    figure = dense_pca_figure(rows, explained, paths, out_path, size)
    grid = list(next(iter(rows.values())).shape[1:3])
    return dict(figure=figure, images=list(paths), size=size, grid=grid,
                explained=explained)
