# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Held-out correspondence accuracy of the demo, against plain loops."""
import itertools

import pytest
import torch
from mmengine.config import Config

from densecl_lab.demo.correspondence_eval import (chance_accuracy,
                                                  checkpoint_correspondence,
                                                  held_out_correspondence,
                                                  with_view_size)
from densecl_lab.demo.stages import CONFIGS
from densecl_lab.utils.staged_run import default_configs_dir

DENSECL_CFG = f'{default_configs_dir()}/{CONFIGS["densecl"]}'


def _tiny_densecl_cfg():
    cfg = Config.fromfile(DENSECL_CFG)
    cfg.model.backbone.base_channels = 8  # C5 has 64 channels
    cfg.model.neck.in_channels = 64
    cfg.model.neck.hid_channels = 16
    return cfg


@pytest.mark.parametrize('grid', [(1, 1), (2, 2), (3, 5), (6, 6)])
@pytest.mark.parametrize('tolerance', [0, 1, 2])
def test_chance_accuracy_by_enumeration(grid, tolerance):
    S_h, S_w = grid
    cells = list(itertools.product(range(S_h), range(S_w)))
    hits = sum(max(abs(a[0] - b[0]), abs(a[1] - b[1])) <= tolerance
               for a in cells for b in cells)
    assert chance_accuracy(grid, tolerance) == pytest.approx(
        hits / len(cells) ** 2)


def test_with_view_size_sets_every_crop_and_copies():
    cfg = Config.fromfile(DENSECL_CFG)
    big = with_view_size(cfg, 192)
    views = big.train_dataloader.dataset.pipeline[1].transforms[0]
    assert views[0].type == 'RandomResizedCrop' and views[0].size == 192
    assert cfg.train_dataloader.dataset.pipeline[1].transforms[0][0].size \
        != 192  # the original is untouched
    del cfg.train_dataloader.dataset.pipeline[1]
    with pytest.raises(KeyError, match='no RandomResizedCrop'):
        with_view_size(cfg, 192)


def test_accuracy_pools_all_overlapping_cells(real_image_paths):
    """The aggregate equals a loop over pairs, cells and the geometry."""
    from densecl_plugin.apis.inference import (backbone_c5, build_model,
                                               make_views)
    from densecl_plugin.models.utils.correspondence import (
        geometric_correspondence, views_geometry)
    torch.manual_seed(0)
    cfg = _tiny_densecl_cfg()
    model = build_model(cfg, None)
    images, seeds, size = real_image_paths[:3], (5, 6), 128  # 4 x 4 grid
    out = held_out_correspondence(model, cfg, images, seeds, size)

    big = with_view_size(cfg, size)
    correct = same = counted = 0
    for image in images:
        for seed in seeds:
            packed = make_views(big, image, seed)
            q_b, k_b = backbone_c5(model, packed)  # (1, C, 4, 4) each
            S = q_b.shape[-1]
            q = torch.nn.functional.normalize(q_b.flatten(2)[0], dim=0)
            k = torch.nn.functional.normalize(k_b.flatten(2)[0], dim=0)
            geo = [views_geometry([packed['data_samples']], v)
                   for v in (0, 1)]
            gt, valid = geometric_correspondence(*geo[0], *geo[1], S)
            for i in range(S * S):
                if not valid[0, i]:
                    continue
                counted += 1
                best = int((q[:, i:i + 1] * k).sum(0).argmax())
                g = int(gt[0, i])
                for guess, bucket in ((best, 'm'), (i, 's')):
                    near = max(abs(guess // S - g // S),
                               abs(guess % S - g % S)) <= 1
                    if bucket == 'm':
                        correct += near
                    else:
                        same += near
    assert out['grid'] == [4, 4] and out['view_size'] == size
    assert out['num_pairs'] == len(images) * len(seeds)
    assert out['num_cells'] == counted > 0
    assert out['accuracy'] == pytest.approx(correct / counted)
    assert out['same_cell_accuracy'] == pytest.approx(same / counted)


def test_needs_images_and_seeds():
    with pytest.raises(ValueError, match='at least one image'):
        held_out_correspondence(None, None, [], [0])


def test_checkpoint_correspondence_builds_and_measures(real_image_paths, tmp_path):
    """The model of a checkpoint, scored as held_out_correspondence scores
    that very model."""
    cfg = _tiny_densecl_cfg()
    images, seeds = real_image_paths[:2], (5, )
    torch.manual_seed(0)
    random_model, random = checkpoint_correspondence(cfg, 'random', images, seeds, 64)
    assert not random_model.training and random['checkpoint'] == 'random'
    # a checkpoint of other weights loads and gives the other model's score
    state = {k: v.clone() for k, v in random_model.state_dict().items()}
    state['backbone.conv1.weight'] *= -1.0
    ckpt = str(tmp_path / 'ckpt.pth')
    torch.save(dict(state_dict=state), ckpt)
    model, result = checkpoint_correspondence(cfg, ckpt, images, seeds, 64)
    assert torch.equal(model.backbone.conv1.weight, state['backbone.conv1.weight'])
    assert result.pop('checkpoint') == ckpt
    assert result == held_out_correspondence(model, cfg, images, seeds, 64)
    assert result['num_pairs'] == 2 and result['grid'] == [2, 2]
