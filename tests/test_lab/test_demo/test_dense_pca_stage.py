# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The demo's dense-feature stage: the picture of the random init, MoCo v2
and DenseCL made from the demo configs' own ResNet-18s on real held-out
photos, reused while its checkpoints and images are unchanged, redone when
one changes."""
import os.path as osp

import torch

from densecl_lab.demo.stages import FULL, Demo, spread_over_folders

PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


def test_spread_over_folders_takes_each_folder_in_turn():
    paths = ['v/1.jpg', 'v/2.jpg', 'v/3.jpg', 'n/1.png', 'h/a.jpg',
             'h/b.jpg']
    assert spread_over_folders(paths, 4) == ['v/1.jpg', 'n/1.png', 'h/a.jpg',
                                             'v/2.jpg']
    assert spread_over_folders(paths, 2) == ['v/1.jpg', 'n/1.png']
    assert spread_over_folders(paths, 9) == ['v/1.jpg', 'n/1.png', 'h/a.jpg',
                                             'v/2.jpg', 'h/b.jpg', 'v/3.jpg']
    assert spread_over_folders([], 4) == []


def test_stage_draws_three_backbones_and_is_reused(tmp_path,
                                                   real_image_paths):
    from densecl_plugin.apis.inference import build_model
    demo = Demo(str(tmp_path / 'work'), 'd', None, FULL)
    demo.manifest = dict(unlabeled=dict(root=str(tmp_path / 'pool'),
                                        images=405),
                         held_out=sorted(real_image_paths)[:3])
    pretrained = {}
    for algo, seeds in (('mocov2', (1, 2)), ('densecl', (3, 4))):
        ckpts = []
        for seed in seeds:
            torch.manual_seed(seed)
            model = build_model(demo.pretrain_config(algo), 'random')
            path = str(tmp_path / f'{algo}_{seed}.pth')
            torch.save(dict(state_dict=model.state_dict()), path)
            ckpts.append(path)
        pretrained[algo] = dict(init_checkpoint=ckpts[0],
                                checkpoint=ckpts[1])
    first = demo.dense_pca(pretrained)
    assert first['images'] == sorted(real_image_paths)[:3]
    assert first['size'] == FULL.pca_size == 384 and first['grid'] == [12, 12]
    assert list(first['explained']) == ['random init', 'MoCo v2', 'DenseCL']
    ratios = [tuple(r) for r in first['explained'].values()]
    assert len(set(ratios)) == 3  # three different backbones
    for r in ratios:
        assert 0 < r[2] <= r[1] <= r[0] < 1
    with open(first['figure'], 'rb') as f:
        assert f.read(8) == PNG_MAGIC
    assert first['figure'] == osp.join(demo.work_dir, 'dense_pca',
                                       'dense_pca.png')

    again = demo.dense_pca(pretrained)
    assert demo.stage_status[-1]['skipped'] and again == first

    torch.save(dict(state_dict={k: v + 0.01 if v.is_floating_point() else v
                                for k, v in torch.load(
                                    pretrained['mocov2']['checkpoint'])[
                                        'state_dict'].items()}),
               pretrained['mocov2']['checkpoint'])
    third = demo.dense_pca(pretrained)
    assert not demo.stage_status[-1]['skipped']
    assert third['explained']['DenseCL'] == first['explained']['DenseCL']
    assert third['explained']['MoCo v2'] != first['explained']['MoCo v2']
