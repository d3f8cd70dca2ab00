# Copyright (c) densecl_plugin contributors. All rights reserved.
"""CPUAmpOptimWrapper: bf16 autocast on the CPU, in a real Runner, and the
DenseCL losses under it against float32."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import OPTIM_WRAPPERS
from mmengine.runner import Runner

from densecl_plugin.engine.optim_wrappers import CPUAmpOptimWrapper
from densecl_plugin.utils.auto_values import resolve_auto_values
from tiny_models import build_tiny_model

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))
CPU_AMP = osp.join(
    REPO, 'configs/densecl/'
    'densecl_resnet18_amp-bf16-1xb16-coslr-640iters_folder-cpu.py')
GPU_AMP = {
    'float16': 'configs/densecl/densecl_resnet50_amp-8xb32-coslr-200e_in1k.py',
    'bfloat16':
    'configs/densecl/densecl_resnet50_amp-bf16-8xb32-coslr-200e_in1k.py',
}
#: relative tolerance of the DenseCL losses under bf16 autocast vs float32
AMP_RTOL = 1e-2


def _wrapper(model, **kwargs):
    return OPTIM_WRAPPERS.build(
        dict(type='densecl_plugin.CPUAmpOptimWrapper',
             optimizer=torch.optim.SGD(model.parameters(), lr=0.1), **kwargs))


def test_built_by_scoped_name_and_autocasts_bf16():
    model = torch.nn.Linear(4, 3)
    wrapper = _wrapper(model)
    assert isinstance(wrapper, CPUAmpOptimWrapper)
    assert not torch.is_autocast_enabled('cpu')
    with wrapper.optim_context(model):
        assert torch.is_autocast_enabled('cpu')
        assert torch.get_autocast_dtype('cpu') == torch.bfloat16
        y = model(torch.randn(2, 4))  # a linear layer: on the bf16 list
    assert y.dtype == torch.bfloat16
    assert not torch.is_autocast_enabled('cpu')
    # parameters and their gradients stay float32; the step updates them
    before = model.weight.detach().clone()
    wrapper.update_params(y.float().square().sum())
    assert model.weight.dtype == torch.float32
    assert not torch.equal(model.weight, before)
    # no loss scaler: the state is the optimizer's alone
    assert set(wrapper.state_dict()) == {'state', 'param_groups'}


def test_bad_dtype_and_non_cpu_model_are_named():
    model = torch.nn.Linear(4, 3)
    with pytest.raises(ValueError, match='float16'):
        _wrapper(model, dtype='float16')
    meta = torch.nn.Linear(4, 3, device='meta')
    wrapper = _wrapper(model)
    with pytest.raises(RuntimeError, match='meta.*AmpOptimWrapper'):
        with wrapper.optim_context(meta):
            pass


def test_accumulation_context_of_the_parent_is_kept():
    model = torch.nn.Linear(4, 1)
    wrapper = _wrapper(model, accumulative_counts=2)
    wrapper.initialize_count_status(model, 0, 4)
    with wrapper.optim_context(model):
        loss = model(torch.ones(1, 4)).float().sum()
    before = model.weight.detach().clone()
    wrapper.update_params(loss)  # first of 2 accumulated: no step yet
    assert torch.equal(model.weight, before)
    with wrapper.optim_context(model):
        loss = model(torch.ones(1, 4)).float().sum()
    wrapper.update_params(loss)
    assert not torch.equal(model.weight, before)


def _densecl():
    """A narrow ResNet-18 (16 base channels): the real model, 16x cheaper."""
    torch.manual_seed(0)
    return build_tiny_model('DenseCL', init=False, depth=18, base_channels=16,
                            hid_channels=64, feat_dim=32, queue_len=256)


def test_densecl_losses_under_cpu_amp_match_float32():
    """bf16 rounds the features (8 bits of mantissa); the logits, softmax
    and loss stay float32, so the losses agree with float32 to 1e-2."""
    model = _densecl()
    twin = copy.deepcopy(model)
    g = torch.Generator().manual_seed(1)
    views = [torch.randn(4, 3, 64, 64, generator=g) for _ in range(2)]
    wrapper = _wrapper(model)
    torch.manual_seed(2)  # the key batch shuffle
    with wrapper.optim_context(model):
        amp = model(views, mode='loss')
    torch.manual_seed(2)
    ref = twin(views, mode='loss')
    for key in ('loss_single', 'loss_dense'):
        assert amp[key].dtype == torch.float32
        torch.testing.assert_close(amp[key], ref[key], rtol=AMP_RTOL, atol=0)
    # the gradients point the same way: closely at the neck, and within the
    # rounding that bf16 convolutions accumulate layer by layer further down
    sum(amp.values()).backward()
    sum(ref.values()).backward()
    for (name, p), q in zip(model.named_parameters(), twin.parameters()):
        if p.grad is None or p.dim() < 2:
            continue
        cos = torch.nn.functional.cosine_similarity(
            p.grad.flatten(), q.grad.flatten(), dim=0)
        assert cos > (0.97 if name.startswith('neck') else 0.85), (name,
                                                                   float(cos))


def test_cpu_amp_config_trains_in_a_runner(tmp_path, real_image_dir):
    cfg = Config.fromfile(CPU_AMP)
    assert cfg.optim_wrapper.type == 'CPUAmpOptimWrapper'
    cfg.work_dir = str(tmp_path)
    cfg.train_dataloader.batch_size = 4
    cfg.train_dataloader.dataset.data_root = real_image_dir
    cfg.train_dataloader.dataset.pipeline[1].transforms[0][0].size = 32
    cfg.model.queue_len = 16
    cfg.model.backbone.base_channels = 16  # a narrow ResNet-18
    cfg.model.neck.update(in_channels=128, hid_channels=64)
    cfg.train_cfg.max_iters = 2
    cfg.param_scheduler[0].T_max = cfg.param_scheduler[0].end = 2
    cfg.custom_hooks = []
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = 2
    cfg.randomness = dict(seed=0)
    resolve_auto_values(cfg)  # 'auto' values, as tools/train.py does
    runner = Runner.from_cfg(cfg)
    before = copy.deepcopy(runner.model.backbone.state_dict())
    runner.train()
    assert isinstance(runner.optim_wrapper, CPUAmpOptimWrapper)
    scalars = runner.message_hub.log_scalars
    for key in ('train/loss_single', 'train/loss_dense'):
        assert torch.isfinite(torch.tensor(scalars[key].current()))
    after = runner.model.backbone.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before
               if after[k].is_floating_point())
    assert all(p.dtype == torch.float32
               for p in runner.model.parameters())
    assert osp.isfile(osp.join(cfg.work_dir, 'iter_2.pth'))


@pytest.mark.parametrize('dtype', sorted(GPU_AMP))
def test_gpu_amp_configs_ask_for_amp_with_their_dtype(dtype):
    cfg = Config.fromfile(osp.join(REPO, GPU_AMP[dtype]))
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.dtype == dtype
    # bf16 needs no scaling (float32's range); fp16 scales dynamically
    assert cfg.optim_wrapper.loss_scale == (
        1. if dtype == 'bfloat16' else 'dynamic')
    assert cfg.optim_wrapper.optimizer.lr == 0.03


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a GPU: '
                    "MMEngine's AmpOptimWrapper asserts CUDA")
@pytest.mark.parametrize('dtype', sorted(GPU_AMP))
def test_gpu_amp_wrapper_builds_and_steps(dtype):
    model = torch.nn.Linear(4, 3).cuda()
    wrapper = OPTIM_WRAPPERS.build(
        dict(Config.fromfile(osp.join(REPO, GPU_AMP[dtype])).optim_wrapper,
             optimizer=torch.optim.SGD(model.parameters(), lr=0.1)))
    with wrapper.optim_context(model):
        y = model(torch.randn(2, 4, device='cuda'))
    assert y.dtype == getattr(torch, dtype)
    wrapper.update_params(y.float().sum())
