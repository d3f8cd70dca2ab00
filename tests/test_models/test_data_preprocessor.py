# Copyright (c) densecl_plugin contributors. All rights reserved.
"""SelfSupDataPreprocessor against a manual normalisation."""
import pytest
import torch
from mmengine.dataset import default_collate, pseudo_collate

from densecl_plugin.datasets import UnlabeledImageDataset
from densecl_plugin.models.data_preprocessor import SelfSupDataPreprocessor
from densecl_plugin.registry import MODELS

MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)


def manual(x: torch.Tensor, to_rgb: bool = True) -> torch.Tensor:
    """Reference: per pixel and channel, with plain loops over channels."""
    x = x.double()
    out = torch.empty_like(x)
    for c in range(3):
        src = 2 - c if to_rgb else c
        out[:, c] = (x[:, src] - MEAN[c]) / STD[c]
    return out.float()


def _views(n=2, h=8, w=10, num_views=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (n, 3, h, w), dtype=torch.uint8,
                          generator=g) for _ in range(num_views)]


def test_default_collate_views_are_rgb_normalised():
    views = _views()
    out = SelfSupDataPreprocessor()(dict(inputs=views, data_samples=['a']))
    assert out['data_samples'] == ['a']
    assert len(out['inputs']) == 2
    for x, ref in zip(out['inputs'], views):
        assert x.dtype == torch.float32 and x.is_contiguous()
        torch.testing.assert_close(x, manual(ref), rtol=0, atol=1e-5)


def test_pseudo_collate_lists_and_non_contiguous_tensors():
    views = _views(n=3)
    # (3, H, W) tensors as channel-last views of HWC memory, as packed
    lists = [[img.permute(1, 2, 0).contiguous().permute(2, 0, 1)
              for img in view] for view in views]
    assert not lists[0][0].is_contiguous()
    out = SelfSupDataPreprocessor()(dict(inputs=lists))
    for x, ref in zip(out['inputs'], views):
        torch.testing.assert_close(x, manual(ref), rtol=0, atol=1e-5)
    assert out['data_samples'] is None


@pytest.mark.parametrize('cfg, to_rgb', [
    (dict(), True),
    (dict(to_rgb=True), True),  # mmpretrain 1.x
    (dict(bgr_to_rgb=True), True),  # mmselfsup 1.x
    (dict(to_rgb=False), False),
    (dict(bgr_to_rgb=False), False),
])
def test_config_keys_of_mmselfsup_and_mmpretrain(cfg, to_rgb):
    pre = MODELS.build(dict(type='SelfSupDataPreprocessor', mean=MEAN,
                            std=STD, **cfg))
    views = _views(num_views=1)
    out = pre(dict(inputs=views))['inputs'][0]
    torch.testing.assert_close(out, manual(views[0], to_rgb), rtol=0,
                               atol=1e-5)


def test_contradicting_channel_options_are_rejected():
    with pytest.raises(ValueError, match='to_rgb'):
        SelfSupDataPreprocessor(to_rgb=True, bgr_to_rgb=False)
    with pytest.raises(ValueError, match='rgb_to_bgr'):
        SelfSupDataPreprocessor(to_rgb=True, rgb_to_bgr=True)


def test_channels_last_and_padding():
    views = _views(h=9, w=13, num_views=1)
    out = SelfSupDataPreprocessor(channels_last=True)(dict(inputs=views))
    x = out['inputs'][0]
    assert x.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(x, manual(views[0]), rtol=0, atol=1e-5)
    pre = SelfSupDataPreprocessor(pad_size_divisor=8, pad_value=-7.)
    padded = pre(dict(inputs=views))['inputs'][0]
    assert padded.shape == (2, 3, 16, 16)
    torch.testing.assert_close(padded[:, :, :9, :13], manual(views[0]),
                               rtol=0, atol=1e-5)
    assert (padded[:, :, 9:] == -7).all()
    assert (padded[:, :, :, 13:] == -7).all()


def test_lists_of_different_sizes_are_padded_after_normalising():
    small, big = _views(n=1, h=4, w=6)[0][0], _views(n=1, h=6, w=5)[0][0]
    pre = SelfSupDataPreprocessor(pad_value=-9.)
    x = pre(dict(inputs=[[small, big]]))['inputs'][0]
    assert x.shape == (2, 3, 6, 6)
    torch.testing.assert_close(x[0, :, :4, :6], manual(small[None])[0],
                               rtol=0, atol=1e-5)
    assert (x[0, :, 4:] == -9).all() and (x[1, :, :, 5:] == -9).all()


@pytest.mark.parametrize('inputs, error', [
    (torch.zeros(2, 3, 4, 4), TypeError),  # not a list of views
    ([], TypeError),
    ([torch.zeros(3, 4, 4)], TypeError),  # a view must be 4-D
    ([torch.zeros(2, 4, 4, 4, dtype=torch.uint8)], ValueError),  # channels
])
def test_bad_inputs_are_explained(inputs, error):
    with pytest.raises(error, match='view|inputs'):
        SelfSupDataPreprocessor()(dict(inputs=inputs))


def test_dataset_to_preprocessor(real_image_dir):
    ds = UnlabeledImageDataset(data_root=real_image_dir, pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='MultiView', num_views=2,
             transforms=[[dict(type='RandomResizedCrop', size=16)]]),
        dict(type='PackSelfSupInputs'),
    ])
    samples = [ds[i] for i in range(3)]
    for collate in (default_collate, pseudo_collate):
        out = SelfSupDataPreprocessor()(collate(samples))
        assert len(out['data_samples']) == 3
        for v, x in enumerate(out['inputs']):
            bgr = torch.stack([s['inputs'][v] for s in samples])
            assert x.shape == (3, 3, 16, 16)
            torch.testing.assert_close(x, manual(bgr), rtol=0, atol=1e-5)
