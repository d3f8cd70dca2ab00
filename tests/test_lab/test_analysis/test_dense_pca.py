# Copyright (c) densecl_plugin contributors. All rights reserved.
"""``densecl_lab.analysis.dense_pca`` and ``tools/analysis/dense_pca.py``: the
PCA against numpy's eigendecomposition of the covariance on random features
with a planted spectrum, the colours against a numpy projection, and the
picture made from a tiny model's C5 features of real photos (computed here
directly with cv2 and the backbone)."""
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from densecl_lab.analysis.dense_pca import (dense_pca_checkpoints, fit_pca,
                                            pca_rgb)
from densecl_plugin.models.algorithms.base import DEFAULT_DATA_PREPROCESSOR
from reference_views import centre_crop
from tiny_models import tiny_model_cfg, write_tiny_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
TOOL = osp.join(REPO, 'tools', 'analysis', 'dense_pca.py')


def _planted(m=300, c=20, seed=0):
    """Features with distinct variances along a random rotation, off-centre."""
    rng = np.random.RandomState(seed)
    scales = np.linspace(5.0, 0.2, c)
    q, _ = np.linalg.qr(rng.randn(c, c))
    return rng.randn(m, c) * scales @ q.T + rng.randn(c) * 3.0


def _numpy_pca(x, k):
    """PCA by numpy's eigendecomposition of the covariance, with the same
    sign rule (each component's largest-magnitude entry positive)."""
    mean = x.mean(axis=0)
    cov = (x - mean).T @ (x - mean)
    vals, vecs = np.linalg.eigh(cov)  # ascending
    order = np.argsort(vals)[::-1]
    vals, vecs = vals[order], vecs[:, order].T  # rows = components
    for i in range(len(vecs)):
        if vecs[i, np.argmax(np.abs(vecs[i]))] < 0:
            vecs[i] = -vecs[i]
    return mean, vecs[:k], vals[:k] / vals.sum()


@pytest.mark.parametrize('k', [1, 3, 5])
def test_fit_pca_is_numpys_eigendecomposition(k):
    x = _planted()
    mean, comps, ratio = _numpy_pca(x, k)
    pca = fit_pca(torch.from_numpy(x).float(), k)
    np.testing.assert_allclose(pca.mean.numpy(), mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(pca.components.numpy(), comps, atol=1e-4)
    np.testing.assert_allclose(pca.explained_ratio.numpy(), ratio,
                               rtol=1e-4)
    assert ratio[0] > 0.1 and np.all(np.diff(ratio) < 0)  # a real spectrum


def test_pca_rgb_is_the_scaled_projection():
    feats = _planted(m=2 * 5 * 6, c=12, seed=2)
    maps = torch.from_numpy(feats.reshape(2, 5, 6, 12)).permute(0, 3, 1, 2)
    rgb, pca = pca_rgb(maps.float().contiguous())
    mean, comps, _ = _numpy_pca(feats, 3)
    proj = (feats - mean) @ comps.T  # cells in (n, y, x) order
    want = (proj - proj.min(0)) / (proj.max(0) - proj.min(0))
    assert rgb.shape == (2, 5, 6, 3) and rgb.dtype == np.float32
    np.testing.assert_allclose(rgb.reshape(-1, 3), want, atol=1e-4)
    assert rgb.min() == 0.0 and rgb.max() == pytest.approx(1.0)


def test_fit_pca_rejects_bad_shapes():
    with pytest.raises(ValueError, match='M >= 2'):
        fit_pca(torch.zeros(1, 4))
    with pytest.raises(ValueError, match='k=5'):
        fit_pca(torch.zeros(10, 4), k=5)
    with pytest.raises(ValueError, match=r'\(N, C, h, w\)'):
        pca_rgb(torch.zeros(3, 4))


@pytest.fixture(scope='module')
def setup(tmp_path_factory, real_image_paths):
    """A tiny DenseCL config and a checkpoint unlike its random init."""
    from densecl_plugin.apis.inference import build_model, load_config
    root = tmp_path_factory.mktemp('dense_pca')
    model = tiny_model_cfg('DenseCL', base_channels=16, hid_channels=24,
                           feat_dim=8,
                           data_preprocessor=DEFAULT_DATA_PREPROCESSOR)
    config = write_tiny_config(str(root / 'tiny_densecl.py'), model)
    torch.manual_seed(5)  # other weights than the random init (seed 0)
    net = build_model(load_config(config), 'random')
    ckpt = str(root / 'iter_4.pth')
    torch.save(dict(state_dict=net.state_dict()), ckpt)
    return config, ckpt, sorted(real_image_paths)[:4], net


def _direct_c5(net, paths, size):
    """C5 of the photos computed here: cv2 resize + centre crop, RGB,
    normalised by hand, the backbone in eval mode."""
    xs = [centre_crop(p, size) for p in paths]
    net.eval()
    with torch.no_grad():
        return net.backbone(torch.stack(xs).contiguous())[-1]


def test_picture_of_real_features(setup, tmp_path):
    config, ckpt, images, net = setup
    out = str(tmp_path / 'pca.png')
    result = dense_pca_checkpoints(
        [('random init', config, 'random'), ('trained', config, ckpt)],
        images, out, size=128)
    assert result['figure'] == out and result['grid'] == [4, 4]
    png = cv2.imread(out)
    assert png is not None and png.shape[0] > 300 and png.shape[1] > 400
    rgb, pca = pca_rgb(_direct_c5(net, images, 128))  # the checkpoint's
    np.testing.assert_allclose(result['explained']['trained'],
                               pca.explained_ratio.numpy(), atol=1e-3)
    assert rgb.reshape(-1, 3).std(axis=0).min() > 0.05  # colours vary
    assert result['explained']['trained'] != \
        result['explained']['random init']


def test_tool(setup, tmp_path):
    config, ckpt, images, _ = setup
    folder = osp.dirname(images[0])
    out = tmp_path / 'fig.png'
    res = subprocess.run(
        [sys.executable, TOOL, config, 'random', ckpt, '--images', folder,
         '--num', '3', '--size', '96', '--labels', 'random init', 'trained',
         '--out', str(out)], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stderr[-2000:]
    assert 'trained: PC1-3 explain ' in res.stdout
    assert f'{out}: 3 images at 96 px (3x3 cells)' in res.stdout
    assert cv2.imread(str(out)) is not None
    bad = subprocess.run(
        [sys.executable, TOOL, config, 'random', ckpt, '--images', folder,
         '--labels', 'one'], capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 2 and '1 labels for 2 checkpoints' in bad.stderr
