# Copyright (c) densecl_plugin contributors. All rights reserved.
"""``densecl_lab.analysis.view_pair_probe`` and
``tools/analysis/probe_pretraining.py``: the figures against plain loops on
random embeddings and analytic cases, then real probes of a tiny model on
real photos (a random init, the same weights saved as a checkpoint, and a
collapsed copy whose embedding no longer depends on the image)."""
import json
import math
import os.path as osp
import subprocess
import sys

import pytest
import torch

from densecl_lab.analysis.view_pair_probe import (METRICS, folder_images,
                                                  format_probe, pair_metrics,
                                                  pick, probe_checkpoints)
from densecl_plugin.models.algorithms.base import DEFAULT_DATA_PREPROCESSOR
from tiny_models import tiny_model_cfg, view_pipeline, write_tiny_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
TOOL = osp.join(REPO, 'tools', 'analysis', 'probe_pretraining.py')


def _loop_metrics(z1, z2):
    """The figures with Python loops over rows and dimensions."""
    def unit(v):
        s = math.sqrt(sum(x * x for x in v))
        return [x / s for x in v]

    a = [unit(r) for r in z1.tolist()]
    b = [unit(r) for r in z2.tolist()]
    n, d = len(a), len(a[0])

    def dot(u, v):
        return sum(x * y for x, y in zip(u, v))

    hits = 0
    pos, neg = [], []
    for i in range(n):
        sims = [dot(a[i], b[j]) for j in range(n)]
        hits += max(range(n), key=lambda j: sims[j]) == i
        pos.append(sims[i])
        neg += [sims[j] for j in range(n) if j != i]
    stds = []
    for k in range(d):
        col = [a[i][k] for i in range(n)]
        mean = sum(col) / n
        stds.append(math.sqrt(sum((x - mean) ** 2 for x in col) / (n - 1)))
    align = sum(sum((x - y) ** 2 for x, y in zip(a[i], b[i]))
                for i in range(n)) / n
    gauss = [math.exp(-2 * sum((x - y) ** 2 for x, y in zip(a[i], a[j])))
             for i in range(n) for j in range(i + 1, n)]
    return dict(view_top1=hits / n, emb_std=sum(stds) / d * math.sqrt(d),
                pos_cos=sum(pos) / n, neg_cos=sum(neg) / len(neg),
                alignment=align, uniformity=math.log(sum(gauss) / len(gauss)))


@pytest.mark.parametrize('n,d,noise', [(2, 3, 0.1), (7, 5, 0.5), (16, 8, 2.0)])
def test_pair_metrics_match_loops(n, d, noise):
    g = torch.Generator().manual_seed(n * 100 + d)
    z1 = torch.randn(n, d, generator=g)
    z2 = z1 + noise * torch.randn(n, d, generator=g)
    got = pair_metrics(z1 * 3.0, z2)  # scale must not matter
    ref = _loop_metrics(z1, z2)
    for key, value in ref.items():
        assert got[key] == pytest.approx(value, abs=1e-5), key
    assert got['n'] == n and got['chance'] == pytest.approx(1 / n)


def test_pair_metrics_analytic_cases():
    z = torch.eye(6)  # six orthogonal unit vectors
    same = pair_metrics(z, z.clone())
    assert same['view_top1'] == 1.0
    assert same['pos_cos'] == pytest.approx(1.0)
    assert same['neg_cos'] == pytest.approx(0.0)
    assert same['alignment'] == pytest.approx(0.0)
    # all pairs at squared distance 2: log exp(-4)
    assert same['uniformity'] == pytest.approx(-4.0)
    # the partners swapped round: no view finds its own
    assert pair_metrics(z, z.roll(1, dims=0))['view_top1'] == 0.0
    collapsed = pair_metrics(torch.ones(5, 4), torch.ones(5, 4))
    assert collapsed['emb_std'] == pytest.approx(0.0)
    assert collapsed['neg_cos'] == pytest.approx(1.0)


@pytest.mark.parametrize('shapes', [((4, 3), (4, 2)), ((1, 3), (1, 3)),
                                    ((4, ), (4, ))])
def test_pair_metrics_rejects_bad_shapes(shapes):
    with pytest.raises(ValueError, match='pair_metrics needs two'):
        pair_metrics(torch.zeros(shapes[0]), torch.zeros(shapes[1]))


@pytest.fixture(scope='module')
def probe_setup(tmp_path_factory, real_image_paths):
    """A tiny MoCo v2 config file, its random init saved as a checkpoint, and
    a collapsed copy (the neck's last layer outputs its bias only)."""
    from densecl_plugin.apis.inference import build_model, load_config
    root = tmp_path_factory.mktemp('probe')
    model = tiny_model_cfg('MoCoV2', feat_dim=8,
                           data_preprocessor=DEFAULT_DATA_PREPROCESSOR)
    config = write_tiny_config(osp.join(root, 'tiny_mocov2.py'), model,
                               view_pipeline(32))
    torch.manual_seed(0)
    net = build_model(load_config(config), 'random')
    same = osp.join(root, 'same.pth')
    torch.save(dict(state_dict=net.state_dict()), same)
    last = [m for m in net.neck.modules() if isinstance(m, torch.nn.Linear)
            or isinstance(m, torch.nn.Conv2d)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.linspace(-1, 1, last.bias.numel()))
    flat = osp.join(root, 'collapsed.pth')
    torch.save(dict(state_dict=net.state_dict()), flat)
    return config, same, flat, real_image_paths


def test_probe_checkpoints_on_real_photos(probe_setup):
    config, same, flat, images = probe_setup
    rows = probe_checkpoints(config, ['random', same, flat], images, seed=5)
    rand, saved, collapsed = rows
    assert [r['checkpoint'] for r in rows] == ['random', same, flat]
    for key in METRICS:  # the checkpoint is loaded, not ignored
        assert saved[key] == pytest.approx(rand[key], abs=1e-5), key
    assert rand['n'] == len(images) == 7
    assert rand['emb_std'] > 0.2
    assert collapsed['emb_std'] == pytest.approx(0.0, abs=1e-4)
    assert collapsed['pos_cos'] == pytest.approx(1.0, abs=1e-4)
    assert collapsed['neg_cos'] == pytest.approx(1.0, abs=1e-4)
    # the backbone is untouched, so its features still tell the views apart
    assert collapsed['feat_top1'] == rand['feat_top1']
    # the views are seeded: the same probe again gives the same figures
    again = probe_checkpoints(config, ['random'], images, seed=5)[0]
    assert again == rand
    other = probe_checkpoints(config, ['random'], images, seed=6)[0]
    assert other['pos_cos'] != rand['pos_cos']
    table = format_probe(rows)
    assert table.count('\n') == 5 and 'chance 0.143' in table


def test_probe_tool_cli(probe_setup, tmp_path):
    config, same, _, images = probe_setup
    out = tmp_path / 'probe.json'
    folder = osp.dirname(images[0])
    res = subprocess.run(
        [sys.executable, TOOL, config, 'random', same, '--images', folder,
         '--num', '4', '--bn', 'eval', '--json', str(out)],
        capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = json.loads(out.read_text())
    assert [r['n'] for r in rows] == [4, 4]
    assert '| view_top1 |' in res.stdout.replace('checkpoint | ', '')
    bad = subprocess.run([sys.executable, TOOL, config, 'random', '--images',
                          folder, '--num', '1'],
                         capture_output=True, text=True, cwd=REPO)
    assert bad.returncode != 0 and '--num must be at least 2' in bad.stderr


def test_folder_images_picks_evenly_from_the_sorted_files(real_image_paths):
    folder = osp.dirname(real_image_paths[0])
    assert folder_images(folder, 3) == [real_image_paths[i] for i in (0, 2, 4)]
    assert folder_images(folder, 3) == pick(sorted(real_image_paths), 3)
    assert folder_images(folder, 50) == sorted(real_image_paths)
    with pytest.raises(ValueError, match='at least 2'):
        folder_images(folder, 1)
