# Copyright (c) densecl_plugin contributors. All rights reserved.
"""A model on two views of one image, in one call (the steps one by one are
tested end to end in ``tests/test_visualization``)."""
import torch
from mmengine.config import Config

from densecl_plugin.apis.inference import (build_model, make_views,
                                           match_image_views)
from densecl_plugin.models.algorithms.base import DEFAULT_DATA_PREPROCESSOR
from densecl_plugin.models.utils.correspondence import geometric_correspondence
from tiny_models import tiny_model_cfg

VIEW = [dict(type='RandomResizedCrop', size=64, scale=(0.2, 1.)),
        dict(type='RandomFlip', prob=0.5)]


def _cfg():
    return Config(dict(
        default_scope='densecl_plugin',
        model=tiny_model_cfg('DenseCL', base_channels=8, hid_channels=16, feat_dim=8,
                             queue_len=8, data_preprocessor=DEFAULT_DATA_PREPROCESSOR),
        train_pipeline=[dict(type='LoadImageFromFile'),
                        dict(type='MultiView', num_views=2, transforms=[VIEW]),
                        dict(type='PackSelfSupInputs', meta_keys=('img_path', ))]))


def test_match_image_views_in_eval_mode_and_restores_the_mode(real_image_paths):
    cfg = _cfg()
    torch.manual_seed(0)
    model = build_model(cfg, 'random').train()
    bn = model.backbone.bn1
    before = bn.running_mean.clone(), int(bn.num_batches_tracked)
    packed, matches, views = match_image_views(model, cfg, real_image_paths[0], seed=4)
    # BatchNorm ran in eval mode (no statistics update), then train mode is back
    assert torch.equal(bn.running_mean, before[0])
    assert int(bn.num_batches_tracked) == before[1]
    assert model.training
    # the views are make_views' with that seed, their geometry as recorded
    again = make_views(cfg, real_image_paths[0], seed=4)
    assert all(torch.equal(a, b) for a, b in zip(packed['inputs'], again['inputs']))
    recorded = again['data_samples'].views
    assert views == tuple((list(v['crop_bbox']), bool(v['flip'])) for v in recorded[:2])
    # scored against the geometric truth of those crops: 64 px -> 2 x 2 cells
    box = [torch.tensor([v[0]], dtype=torch.float64) for v in views]
    flip = [torch.tensor([v[1]]) for v in views]
    gt, valid = geometric_correspondence(box[0], flip[0], box[1], flip[1], 2)
    assert matches.grid_size == (2, 2)
    assert torch.equal(matches.valid, valid)
    assert torch.equal(matches.gt_ind[valid], gt[valid])
