# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Split BN (``split_bn_groups``): one process with G=2 equals real 2-rank
gloo DDP with shuffle BN, step for step; the grouped BN equals a by-hand
reference; the option leaves state_dict keys and eval untouched."""
import socket

import pytest
import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp
from mmengine.optim import OptimWrapper
from torch import nn

WORLD_SIZE = 2
N_RANK = 2  # images per rank; the one-process batch is WORLD_SIZE * N_RANK
STEPS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class _GradRecorder(OptimWrapper):
    """A real OptimWrapper that keeps the gradients seen by each step (a
    small lr: with lr 0.5 MoCo v2 amplifies rounding differences between
    batch-2 and batch-4 convolutions to ~1% of the stem gradient by step 2)."""

    def __init__(self, model: nn.Module, lr: float = 0.05):
        super().__init__(torch.optim.SGD(model.parameters(), lr=lr))
        self.named = [(n, p) for n, p in model.named_parameters()
                      if p.requires_grad]
        self.grads = []

    def step(self, **kwargs) -> None:
        self.grads.append({n: p.grad.detach().clone() for n, p in self.named
                           if p.grad is not None})
        super().step(**kwargs)


def _model(algo: str, split_bn_groups: int = 1):
    from tiny_models import build_tiny_model
    torch.manual_seed(0)
    return build_tiny_model(algo, depth=18, base_channels=8, hid_channels=16,
                            feat_dim=8, queue_len=8, momentum=0.9,
                            split_bn_groups=split_bn_groups)


def _images(step: int, per_rank: int = N_RANK):
    # 64 px: a 2x2 C5 map, so each rank's BN sees 8 values per channel at
    # C5 (with 2 values the BN output is +-1 and its input gradient is 0
    # up to rounding noise, which no comparison can check)
    g = torch.Generator().manual_seed(1000 + step)
    return [torch.randn(WORLD_SIZE * per_rank, 3, 64, 64, generator=g)
            for _ in range(2)]  # im_q, im_k of the global batch


def _bn_stats(model: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()
            if k.endswith(('running_mean', 'running_var'))}


def _train(model, optim, images_of_step, train_step):
    out = dict(loss=[], grads=optim.grads, bn=[], queues=None)
    for step in range(STEPS):
        torch.manual_seed(100 + step)  # the shuffle permutation (rank 0's)
        log = train_step(dict(inputs=images_of_step(step)), optim)
        out['loss'].append({k: float(v.detach()) for k, v in log.items()})
        out['bn'].append(_bn_stats(model))
    out['params'] = {n: p.detach().clone() for n, p in optim.named}
    out['queues'] = {n: getattr(model, n).clone() for n in model.queue_names}
    return out


def _worker(rank: int, port: int, algo: str, path: str, groups: int = 1,
            per_rank: int = N_RANK) -> None:
    torch.set_num_threads(1)
    torch_dist.init_process_group('gloo',
                                  init_method=f'tcp://127.0.0.1:{port}',
                                  rank=rank, world_size=WORLD_SIZE)
    try:
        from mmengine.model import MMDistributedDataParallel
        model = _model(algo, groups)  # shuffle BN across the ranks
        ddp = MMDistributedDataParallel(module=model, broadcast_buffers=False,
                                        find_unused_parameters=False)
        optim = _GradRecorder(model)
        sl = slice(rank * per_rank, (rank + 1) * per_rank)
        out = _train(model, optim,
                     lambda s: [v[sl] for v in _images(s, per_rank)],
                     ddp.train_step)
        torch.save(out, f'{path}.{rank}')
    finally:
        torch_dist.destroy_process_group()


@pytest.mark.parametrize('algo', ['DenseCL', 'MoCoV2'])
def test_split_bn_equals_2_rank_ddp_shuffle_bn(algo, tmp_path):
    path = str(tmp_path / 'ddp')
    mp.spawn(_worker, args=(_free_port(), algo, path), nprocs=WORLD_SIZE,
             join=True)
    ranks = [torch.load(f'{path}.{r}') for r in range(WORLD_SIZE)]

    model = _model(algo, split_bn_groups=WORLD_SIZE)
    optim = _GradRecorder(model)
    one = _train(model, optim, _images, model.train_step)

    close = dict(rtol=1e-4, atol=1e-5)
    for step in range(STEPS):
        for key, value in one['loss'][step].items():  # rank mean = global
            ddp_mean = sum(r['loss'][step][key] for r in ranks) / WORLD_SIZE
            assert value == pytest.approx(ddp_mean, rel=1e-4, abs=1e-5), \
                (step, key)
        grads = ranks[0]['grads'][step]  # DDP all-reduced: same on all ranks
        assert set(one['grads'][step]) == set(grads)
        for name, g in grads.items():
            # rounding of batch-2 vs batch-4 convolutions: 1e-3 of the
            # tensor's largest gradient
            torch.testing.assert_close(one['grads'][step][name], g,
                                       rtol=1e-3,
                                       atol=1e-3 * float(g.abs().max()))
        # running stats: the mean of what the ranks hold (a linear update)
        assert one['bn'][step]
        for key, v in one['bn'][step].items():
            ddp_mean = sum(r['bn'][step][key] for r in ranks) / WORLD_SIZE
            torch.testing.assert_close(v, ddp_mean, **close,
                                       msg=f'{step} {key}')
    for name, p in ranks[0]['params'].items():
        torch.testing.assert_close(one['params'][name], p, **close)
    for name, q in ranks[0]['queues'].items():
        torch.testing.assert_close(one['queues'][name], q, **close)

    # without split BN, one process is *not* the DDP run (the test can fail)
    model = _model(algo)
    optim = _GradRecorder(model)
    plain = _train(model, optim, _images, model.train_step)
    ddp_loss = sum(r['loss'][0]['loss'] for r in ranks) / WORLD_SIZE
    assert abs(plain['loss'][0]['loss'] - ddp_loss) > 1e-3


def _reference_group_bn(x, weight, bias, eps, groups):
    """Per contiguous group: (x - mean) / sqrt(biased var + eps), by loops."""
    outs = []
    n = x.shape[0] // groups
    for g in range(groups):
        chunk = x[g * n:(g + 1) * n]
        y = torch.empty_like(chunk)
        for c in range(x.shape[1]):
            vals = chunk[:, c].reshape(-1)
            mean = vals.sum() / vals.numel()
            var = ((vals - mean) ** 2).sum() / vals.numel()
            y[:, c] = (chunk[:, c] - mean) / torch.sqrt(var + eps) \
                * weight[c] + bias[c]
        outs.append(y)
    return torch.cat(outs)


def test_grouped_bn_against_loops():
    from densecl_plugin.models.utils import split_batchnorm
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(3, momentum=0.3)
    nn.init.normal_(bn.weight)
    nn.init.normal_(bn.bias)
    x = torch.randn(6, 3, 4, 5) * 3 + 1
    with split_batchnorm([bn], 3):
        y = bn(x)
    ref = _reference_group_bn(x, bn.weight.detach(), bn.bias.detach(),
                              bn.eps, 3)
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)
    # running stats: mean over groups of 0.7 * init + 0.3 * group stat
    n = 2
    means = [x[g * n:(g + 1) * n].mean(dim=(0, 2, 3)) for g in range(3)]
    vars_ = [x[g * n:(g + 1) * n].transpose(0, 1).reshape(3, -1).var(dim=1)
             for g in range(3)]  # unbiased, as torch's running_var
    torch.testing.assert_close(bn.running_mean,
                               sum(0.3 * m for m in means) / 3)
    torch.testing.assert_close(bn.running_var,
                               sum(0.7 + 0.3 * v for v in vars_) / 3)
    assert int(bn.num_batches_tracked) == 1
    assert 'forward' not in vars(bn)  # restored
    # eval mode inside the block: the running statistics, as without it
    bn.eval()
    with split_batchnorm([bn], 3):
        y_eval = bn(x)
    torch.testing.assert_close(y_eval, nn.BatchNorm2d.forward(bn, x))


def test_split_bn_option_validation_layout_and_eval():
    from densecl_plugin.registry import MODELS
    from tiny_models import tiny_model_cfg
    for bad in (0, -1, 1.5, True, '2'):
        with pytest.raises(ValueError, match='split_bn_groups'):
            MODELS.build(tiny_model_cfg('MoCoV2', split_bn_groups=bad))
    plain, split = _model('DenseCL'), _model('DenseCL', split_bn_groups=2)
    assert list(plain.state_dict()) == list(split.state_dict())
    split.load_state_dict(plain.state_dict())
    x = torch.randn(3, 3, 32, 32)
    plain.eval()
    split.eval()
    torch.testing.assert_close(split(x, mode='predict')[0],
                               plain(x, mode='predict')[0])
    split.train()
    with pytest.raises(ValueError, match=r'split_bn_groups=2.*batch of 3'):
        split([x, x], mode='loss')


def test_split_bn_under_ddp_splits_each_rank_batch(tmp_path):
    """2 ranks x split_bn_groups=2 == one process x 4 groups: the shuffle
    crosses the ranks, then each rank's slice is split in contiguous groups
    (rank r holds groups 2r and 2r + 1 of the permuted global batch)."""
    path, per_rank = str(tmp_path / 'ddp'), 4
    mp.spawn(_worker, args=(_free_port(), 'MoCoV2', path, 2, per_rank),
             nprocs=WORLD_SIZE, join=True)
    ranks = [torch.load(f'{path}.{r}') for r in range(WORLD_SIZE)]
    model = _model('MoCoV2', split_bn_groups=2 * WORLD_SIZE)
    optim = _GradRecorder(model)
    one = _train(model, optim, lambda s: _images(s, per_rank),
                 model.train_step)
    close = dict(rtol=1e-4, atol=1e-5)
    for step in range(STEPS):
        ddp_mean = sum(r['loss'][step]['loss'] for r in ranks) / WORLD_SIZE
        assert one['loss'][step]['loss'] == pytest.approx(
            ddp_mean, rel=1e-4, abs=1e-5), step
        for name, g in ranks[0]['grads'][step].items():
            torch.testing.assert_close(one['grads'][step][name], g,
                                       **close, msg=f'{step} {name}')
        for key, v in one['bn'][step].items():
            ddp_mean = sum(r['bn'][step][key] for r in ranks) / WORLD_SIZE
            torch.testing.assert_close(v, ddp_mean, **close,
                                       msg=f'{step} {key}')
    torch.testing.assert_close(one['queues']['queue'],
                               ranks[0]['queues']['queue'], **close)
    # 2 groups in one process (each rank's BN batch of the DDP run without
    # split) is not it: the test can fail
    model = _model('MoCoV2', split_bn_groups=2)
    two = _train(model, _GradRecorder(model), lambda s: _images(s, per_rank),
                 model.train_step)
    assert abs(two['loss'][0]['loss'] - one['loss'][0]['loss']) > 1e-4
