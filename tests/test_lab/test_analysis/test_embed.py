# Copyright (c) densecl_plugin contributors. All rights reserved.
"""``densecl_lab.analysis.embed`` and ``tools/analysis/embed.py``: a folder of
real photos (in subfolders, names that sort otherwise than they were
written) embedded by a tiny DenseCL, against the same embeddings computed
here directly (cv2 resize and crop, normalisation by hand, the backbone and
the neck's MLP); the file order; bad inputs."""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from densecl_lab.analysis.embed import embed_folder, embed_images, load_image
from densecl_plugin.models.algorithms.base import DEFAULT_DATA_PREPROCESSOR
from reference_views import centre_crop
from tiny_models import tiny_model_cfg, write_tiny_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
TOOL = osp.join(REPO, 'tools', 'analysis', 'embed.py')
#: where each photo goes under the folder (the sorted order differs from
#: the order of the photos' names)
LAYOUT = ('b/zeta.jpg', 'a.jpg', 'b/alpha.JPG', 'c/d/e.png', 'z.jpg',
          'b/m.jpeg', 'a2.jpg')


@pytest.fixture(scope='module')
def setup(tmp_path_factory, real_image_paths):
    """A tiny DenseCL config, a checkpoint with non-trivial BN statistics
    and a folder of the 7 real photos (plus a non-image file)."""
    from densecl_plugin.apis.inference import build_model, load_config
    root = tmp_path_factory.mktemp('embed')
    folder = root / 'photos'
    for src, rel in zip(sorted(real_image_paths), LAYOUT):
        os.makedirs(osp.dirname(folder / rel), exist_ok=True)
        if rel.endswith('.png'):
            cv2.imwrite(str(folder / rel), cv2.imread(src))
        else:
            shutil.copy(src, folder / rel)
    (folder / 'notes.txt').write_text('not an image')
    model = tiny_model_cfg('DenseCL', base_channels=16, hid_channels=24,
                           feat_dim=8,
                           data_preprocessor=DEFAULT_DATA_PREPROCESSOR)
    config = write_tiny_config(str(root / 'tiny_densecl.py'), model)
    torch.manual_seed(0)
    net = build_model(load_config(config), 'random')
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2, generator=gen)
                m.running_var.uniform_(0.5, 1.5, generator=gen)
    ckpt = str(root / 'iter_4.pth')
    torch.save(dict(state_dict=net.state_dict()), ckpt)
    net.eval()
    return config, ckpt, str(folder), net


def _direct(net, path, size):
    """The embeddings of one file, computed here: (pooled C5, neck)."""
    x = centre_crop(path, size)[None]
    with torch.no_grad():
        c5 = net.backbone(x.contiguous())[-1].mean(dim=(2, 3))[0]
        return c5, net.neck.mlp(c5[None])[0]


@pytest.mark.parametrize('feature', ['c5', 'neck'])
def test_embeddings_are_the_direct_computation_in_file_order(setup, feature,
                                                             tmp_path):
    config, ckpt, folder, net = setup
    lines = []
    out = embed_folder(config, ckpt, folder, str(tmp_path), feature=feature,
                       size=64, batch_size=3, log=lines.append)
    files = (tmp_path / 'files.txt').read_text().splitlines()
    assert files == sorted(LAYOUT)  # recursive, sorted, relative, no .txt
    emb = np.load(tmp_path / 'embeddings.npy')
    assert emb.dtype == np.float32
    assert emb.shape == out['shape'] == (7, 128 if feature == 'c5' else 8)
    for row, name in zip(emb, files):
        want = _direct(net, osp.join(folder, name), 64)[feature == 'neck']
        np.testing.assert_allclose(row, want.numpy(), rtol=1e-4, atol=1e-5)
    assert np.linalg.matrix_rank(emb) > 1  # rows differ: order is tested
    settings = json.loads((tmp_path / 'embed.json').read_text())
    assert settings['feature'] == feature and settings['images'] == 7
    assert lines == [f'{tmp_path}/embeddings.npy: 7 x {emb.shape[1]} '
                     f'{feature} embeddings of the images under {folder} '
                     f'(64 px); file order in {tmp_path}/files.txt']


def test_batches_do_not_change_the_rows(setup):
    _, _, folder, net = setup
    paths = [osp.join(folder, n) for n in sorted(LAYOUT)]
    one = embed_images(net, paths, size=64, batch_size=1)
    all_ = embed_images(net, paths, size=64, batch_size=7)
    np.testing.assert_allclose(one, all_, rtol=1e-5, atol=1e-6)


def test_load_image_crops_the_centre(tmp_path):
    img = np.zeros((40, 80, 3), np.uint8)
    img[:, 30:50] = 255  # a white band in the middle third of the width
    path = str(tmp_path / 'band.png')
    cv2.imwrite(path, img)
    out = load_image(path, 32)  # 32 x 64 after the resize, centre 32 x 32
    assert tuple(out.shape) == (3, 32, 32) and out.dtype == torch.uint8
    row = out[0, 16].tolist()
    assert row[0] == 0 and row[-1] == 0 and row[16] == 255


def test_bad_inputs_give_clear_errors(setup, tmp_path):
    config, ckpt, folder, net = setup
    with pytest.raises(FileNotFoundError, match='does not exist'):
        embed_folder(config, ckpt, str(tmp_path / 'absent'), str(tmp_path))
    empty = tmp_path / 'empty'
    empty.mkdir()
    (empty / 'readme.txt').write_text('x')
    with pytest.raises(FileNotFoundError, match='no images found under'):
        embed_folder(config, ckpt, str(empty), str(tmp_path))
    (empty / 'broken.jpg').write_bytes(b'not a jpeg')
    with pytest.raises(ValueError, match='cannot read image .*broken.jpg'):
        embed_folder(config, ckpt, str(empty), str(tmp_path / 'o'))
    with pytest.raises(ValueError, match="feature must be one of"):
        embed_folder(config, ckpt, folder, str(tmp_path), feature='dense')
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        embed_folder(config, str(tmp_path / 'missing.pth'), folder,
                     str(tmp_path))
    assert not (tmp_path / 'embeddings.npy').exists()


def test_tool(setup, tmp_path):
    config, ckpt, folder, net = setup
    out = tmp_path / 'out'
    res = subprocess.run(
        [sys.executable, TOOL, config, ckpt, folder, '--out', str(out),
         '--feature', 'neck', '--size', '64'],
        capture_output=True, text=True, cwd=str(tmp_path))
    assert res.returncode == 0, res.stderr[-2000:]
    assert '7 x 8 neck embeddings' in res.stdout
    emb = np.load(out / 'embeddings.npy')
    first = (out / 'files.txt').read_text().splitlines()[0]
    np.testing.assert_allclose(
        emb[0], _direct(net, osp.join(folder, first), 64)[1].numpy(),
        rtol=1e-4, atol=1e-5)
    bad = subprocess.run([sys.executable, TOOL, config, ckpt, folder],
                         capture_output=True, text=True, cwd=str(tmp_path))
    assert bad.returncode == 2 and '--out' in bad.stderr
