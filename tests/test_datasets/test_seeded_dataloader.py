# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The pre-training dataloader, built by MMEngine's Runner, is reproducible.

MMEngine seeds the sampler and each DataLoader worker (numpy's global RNG:
``seed + worker_id``); the view transforms draw from numpy's global RNG, so
the same seed gives the same views and a different seed different ones.
"""
import torch
from mmengine.runner import Runner

from densecl_plugin.registry import DATASETS  # noqa: F401 (our scope)

VIEW = [
    dict(type='RandomResizedCrop', size=16),
    dict(type='ColorJitter', prob=0.8),
    dict(type='RandomGrayscale', prob=0.2),
    dict(type='GaussianBlur', prob=0.5),
    dict(type='RandomFlip', prob=0.5),
]


def _first_batches(data_root: str, seed: int, num_batches: int = 2):
    loader = Runner.build_dataloader(
        dict(batch_size=2,
             num_workers=2,
             sampler=dict(type='DefaultSampler', shuffle=True),
             collate_fn=dict(type='default_collate'),
             dataset=dict(
                 type='densecl_plugin.UnlabeledImageDataset',
                 data_root=data_root,
                 pipeline=[
                     dict(type='LoadImageFromFile'),
                     dict(type='MultiView', num_views=2, transforms=[VIEW]),
                     dict(type='PackSelfSupInputs'),
                 ])),
        seed=seed)
    batches = []
    for batch in loader:
        meta = [(s.img_path, s.views) for s in batch['data_samples']]
        batches.append((batch['inputs'], meta))
        if len(batches) == num_batches:
            break
    return batches


def test_runner_dataloader_same_seed_same_views(real_image_dir):
    first = _first_batches(real_image_dir, seed=3)
    again = _first_batches(real_image_dir, seed=3)
    other = _first_batches(real_image_dir, seed=4)
    for (inputs_a, meta_a), (inputs_b, meta_b) in zip(first, again):
        assert meta_a == meta_b
        assert all(torch.equal(a, b) for a, b in zip(inputs_a, inputs_b))
    assert [m for _, m in first] != [m for _, m in other]
    # the two workers draw different views (worker seeds differ)
    views = [v for _, meta in first for _, vs in meta for v in vs]
    assert len({v['crop_bbox'] for v in views}) == len(views)
