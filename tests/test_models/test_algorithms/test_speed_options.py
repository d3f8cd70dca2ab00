# Copyright (c) densecl_plugin contributors. All rights reserved.
"""``channels_last`` and ``compile_backbone`` of DenseCL and MoCo v2: the
same losses and gradients as the plain model, the same checkpoints."""
import copy

import pytest
import torch

from densecl_plugin.models import DenseCL, MoCoV2
from densecl_plugin.registry import MODELS
from tiny_models import tiny_model_cfg

CL = torch.channels_last
#: channels-last vs contiguous: the same arithmetic in another order
CL_TOL = dict(rtol=1e-4, atol=1e-5)


def _build(cls, **kwargs):
    """A narrow ResNet-18 (16 base channels) and small heads."""
    torch.manual_seed(0)
    model = MODELS.build(tiny_model_cfg(
        cls.__name__, depth=18, base_channels=16, hid_channels=64,
        feat_dim=16, queue_len=64,
        backbone=dict(zero_init_residual=True),  # mmdet's default, as before
        data_preprocessor=dict(type='SelfSupDataPreprocessor'), **kwargs))
    assert type(model) is cls
    return model


def _batch(size=64):
    g = torch.Generator().manual_seed(1)
    views = [torch.randint(0, 256, (4, 3, size, size), generator=g,
                           dtype=torch.uint8) for _ in range(2)]
    return dict(inputs=views, data_samples=None)


def _losses(model, data):
    torch.manual_seed(2)  # the key batch shuffle
    data = model.data_preprocessor(data, training=True)
    return model(**data, mode='loss'), data['inputs']


@pytest.mark.parametrize('cls', [DenseCL, MoCoV2])
def test_channels_last_gives_the_same_losses_and_gradients(cls):
    plain = _build(cls)
    fast = _build(cls, channels_last=True)
    fast.load_state_dict(plain.state_dict())  # contiguous checkpoint loads
    assert fast.state_dict().keys() == plain.state_dict().keys()
    for m in (fast.backbone, fast.encoder_k.module[0]):
        assert m.conv1.weight.is_contiguous(memory_format=CL)
    assert fast.queue.is_contiguous()  # 2-D buffers untouched
    data = _batch()
    ref, ref_inputs = _losses(plain, data)
    out, inputs = _losses(fast, data)
    assert all(v.is_contiguous(memory_format=CL) for v in inputs)
    assert not ref_inputs[0].is_contiguous(memory_format=CL)
    for key in ref:
        torch.testing.assert_close(out[key], ref[key], **CL_TOL)
    sum(ref.values()).backward()
    sum(out.values()).backward()
    compared = 0
    for (name, p), q in zip(fast.named_parameters(), plain.parameters()):
        # only the key encoder (no requires_grad, EMA-updated) has no grad
        assert (q.grad is None) == (p.grad is None) == (not q.requires_grad), name
        if q.grad is not None:  # summation order: 1e-5 of the largest entry
            err = (p.grad - q.grad).abs().max()
            assert err <= 1e-4 * q.grad.abs().max(), (name, float(err))
            compared += 1
    n_trainable = sum(q.requires_grad for q in plain.parameters())
    assert compared == n_trainable > 50, (compared, n_trainable)
    # an optimizer step and the momentum update keep the layout
    torch.optim.SGD(fast.parameters(), lr=0.1, momentum=0.9).step()
    _losses(fast, data)
    assert fast.backbone.conv1.weight.is_contiguous(memory_format=CL)
    assert fast.encoder_k.module[0].conv1.weight.is_contiguous(
        memory_format=CL)


def test_options_switch_on_after_building():
    model = _build(MoCoV2)
    assert not model.channels_last
    model.set_speed_options(channels_last=True)
    assert model.channels_last and model.data_preprocessor.channels_last
    assert model.encoder_k.module[0].conv1.weight.is_contiguous(
        memory_format=CL)
    model.set_speed_options()  # no option: nothing switched off
    assert model.channels_last


def test_bad_option_types_are_named():
    with pytest.raises(TypeError, match='channels_last'):
        _build(DenseCL, channels_last='yes')
    with pytest.raises(TypeError, match='compile_backbone'):
        _build(MoCoV2, compile_backbone='max-autotune')
    # a 0/1 flag from a config is a mistake, named with the class
    with pytest.raises(TypeError, match='MoCoV2: channels_last must be a bool, got 1'):
        _build(MoCoV2, channels_last=1)
    with pytest.raises(TypeError, match="DenseCL: allow_frozen_bn must be a bool, got 'no'"):
        _build(DenseCL, allow_frozen_bn='no')


def test_compiled_backbones_trace_and_keep_names_and_values():
    """Dynamo traces both backbones; the ``eager`` backend runs the traced
    graph without code generation, so the values are the plain ones."""
    torch._dynamo.reset()
    plain = _build(DenseCL)
    fast = _build(DenseCL, compile_backbone=dict(backend='eager'))
    fast.load_state_dict(plain.state_dict())
    assert fast.state_dict().keys() == plain.state_dict().keys()
    assert not any('_orig_mod' in k for k in fast.state_dict())
    data = _batch(32)
    ref, _ = _losses(plain, data)
    out, _ = _losses(fast, data)
    for key in ref:
        torch.testing.assert_close(out[key], ref[key], rtol=0, atol=0)
    assert fast.backbone._compiled_call_impl is not None
    assert fast.encoder_k.module[0]._compiled_call_impl is not None


def test_inductor_compiled_backbones_match_eager():
    """Inductor generates C++ for the CPU; forward only (no_grad) keeps the
    compile to seconds (with gradients it takes minutes here)."""
    torch._dynamo.reset()
    plain = _build(DenseCL)
    fast = _build(DenseCL, compile_backbone=True)
    fast.load_state_dict(copy.deepcopy(plain.state_dict()))
    data = _batch(32)
    with torch.no_grad():
        ref, _ = _losses(plain, data)
        out, _ = _losses(fast, data)
    for key in ref:
        torch.testing.assert_close(out[key], ref[key], **CL_TOL)
