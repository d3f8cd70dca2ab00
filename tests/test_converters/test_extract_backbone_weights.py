# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Backbone extraction from every checkpoint layout, exactly."""

import pytest
import torch

from densecl_plugin.converters import (BackboneNotFoundError,
                                       extract_backbone_state_dict,
                                       extract_backbone_weights,
                                       load_backbone_weights)

LAYOUTS = {  # layout -> (expected stripped prefix, dropped keys)
    'densecl_plugin': ('backbone.', []),
    'openselfsup': ('backbone.', []),
    'openselfsup_q': ('encoder_q.0.', []),
    'moco': ('module.encoder_q.', ['fc.0.bias', 'fc.0.weight', 'fc.2.bias',
                                   'fc.2.weight']),
    'extracted': ('', []),
    'bare': ('', ['fc.bias', 'fc.weight']),
}


def assert_same_tensors(got, want):
    assert sorted(got) == sorted(want)
    for k in want:
        assert torch.equal(got[k], want[k]), k


@pytest.mark.parametrize('layout', sorted(LAYOUTS))
def test_extract_every_layout_exactly(layout, resnet18_sd, make_checkpoint,
                                      tmp_path):
    src = str(tmp_path / f'{layout}.pth')
    torch.save(make_checkpoint(layout, resnet18_sd), src)
    weights = load_backbone_weights(src)
    prefix, dropped = LAYOUTS[layout]
    assert weights.prefix == prefix
    assert weights.dropped == dropped
    assert_same_tensors(weights.state_dict, resnet18_sd)


def test_extract_writes_state_dict_and_meta(resnet18_sd, make_checkpoint,
                                            tmp_path):
    src, dst = str(tmp_path / 'full.pth'), str(tmp_path / 'out' / 'bb.pth')
    torch.save(make_checkpoint('densecl_plugin', resnet18_sd), src)
    extract_backbone_weights(src, dst)
    out = torch.load(dst, weights_only=True)
    assert sorted(out) == ['meta', 'state_dict']
    assert out['meta']['source_layout'].startswith('densecl_plugin')
    assert out['meta']['stripped_prefix'] == 'backbone.'
    assert_same_tensors(out['state_dict'], resnet18_sd)
    # extracting an extracted file is the identity
    again = load_backbone_weights(dst)
    assert again.prefix == ''
    assert_same_tensors(again.state_dict, resnet18_sd)


def test_extracted_file_loads_with_mmengine_pretrained(resnet18_sd,
                                                       make_checkpoint,
                                                       tmp_path):
    """MMEngine's stock ``Pretrained`` (no prefix) reads our output."""
    from mmdet.models.backbones import ResNet
    from mmengine.model.weight_init import PretrainedInit
    src, dst = str(tmp_path / 'full.pth'), str(tmp_path / 'bb.pth')
    torch.save(make_checkpoint('moco', resnet18_sd), src)
    extract_backbone_weights(src, dst)
    model = ResNet(18)
    PretrainedInit(checkpoint=dst)(model)
    assert_same_tensors(model.state_dict(), resnet18_sd)


def test_no_backbone_is_a_clear_error(tmp_path):
    src = str(tmp_path / 'neck_only.pth')
    torch.save({'state_dict': {'neck.mlp.0.weight': torch.zeros(2, 2),
                               'neck.mlp.0.bias': torch.zeros(2),
                               'queue': torch.zeros(2, 4)}}, src)
    with pytest.raises(BackboneNotFoundError) as err:
        load_backbone_weights(src)
    msg = str(err.value)
    assert src in msg
    assert "'neck.' (2 keys)" in msg and "'queue' (1 key)" in msg
    assert "'backbone.'" in msg and "'module.encoder_q.'" in msg


def test_deep_stem_is_not_mistaken_for_a_resnet():
    from mmdet.models.backbones import ResNet
    sd = ResNet(18, deep_stem=True).state_dict()
    with pytest.raises(BackboneNotFoundError, match="'stem.'"):
        extract_backbone_state_dict(sd)


def test_classifier_only_is_an_error():
    sd = {'module.encoder_q.fc.weight': torch.zeros(2, 2)}
    with pytest.raises(BackboneNotFoundError, match='only a classifier'):
        extract_backbone_state_dict(sd)


def test_missing_and_bad_files(tmp_path):
    missing = str(tmp_path / 'nope.pth')
    with pytest.raises(FileNotFoundError, match='nope.pth.*does not exist'):
        load_backbone_weights(missing)
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    with pytest.raises(ValueError, match='cannot read checkpoint'):
        load_backbone_weights(str(empty))
    torch.save([1, 2, 3], str(tmp_path / 'list.pth'))
    with pytest.raises(ValueError, match='holds a list'):
        load_backbone_weights(str(tmp_path / 'list.pth'))


def test_real_densecl_checkpoint(tmp_path):
    """A checkpoint of our real DenseCL model, saved as MMEngine saves it."""
    from mmengine.logging import MessageHub
    from mmengine.runner.checkpoint import save_checkpoint, weights_to_cpu

    from tiny_models import build_tiny_model
    model = build_tiny_model('DenseCL', depth=18, hid_channels=16,
                             feat_dim=8, queue_len=16)
    with torch.no_grad():  # make query and key encoders differ
        for p in model.backbone.parameters():
            p.add_(torch.randn_like(p))
    hub = MessageHub.get_instance('tw_extract_test')
    hub.update_scalar('train/loss', 1.5)
    path = str(tmp_path / 'epoch_1.pth')
    save_checkpoint({'meta': {'epoch': 1}, 'message_hub': hub.state_dict(),
                     'state_dict': weights_to_cpu(model.state_dict())}, path)
    weights = load_backbone_weights(path)
    assert weights.prefix == 'backbone.'
    assert_same_tensors(weights.state_dict, model.backbone.state_dict())
    key_bb = model.encoder_k.module[0].state_dict()
    assert not torch.equal(weights.state_dict['conv1.weight'],
                           key_bb['conv1.weight'])


def test_cli(resnet18_sd, run_converter):
    dst, out = run_converter('extract_backbone_weights', 'openselfsup',
                             resnet18_sd, 'bb.pth')
    assert 'stripped' in out
    assert_same_tensors(torch.load(dst)['state_dict'], resnet18_sd)
