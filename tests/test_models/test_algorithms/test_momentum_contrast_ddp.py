# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Real 2-process DDP on gloo (CPU): shuffle BN across ranks, shared queues.

One spawn runs every check (process start-up dominates the cost):

- ``batch_shuffle_ddp`` moves samples across ranks with one permutation for
  all ranks (drawn on rank 0 although every rank's RNG differs), and
  ``batch_unshuffle_ddp`` undoes it exactly; ``concat_all_gather`` is in
  rank order;
- DenseCL wrapped in ``MMDistributedDataParallel(find_unused_parameters=
  False, broadcast_buffers=False)`` trains 3 steps through ``train_step``:
  after each step both queues are identical on both ranks and hold the keys
  of rank 0 then rank 1 at the pointer, wrapping around a queue length (10)
  that the global batch (4) does not divide. The backbone uses GroupNorm so
  that each rank can recompute its own keys without the shuffle.
"""
import socket

import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp
import torch.nn.functional as F

WORLD_SIZE = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _check_dist_utils(rank: int) -> None:
    from densecl_plugin.models.utils import (batch_shuffle_ddp,
                                             batch_unshuffle_ddp,
                                             concat_all_gather)
    N = 4
    g = concat_all_gather(torch.full((2, 1), rank))
    assert g.flatten().tolist() == [0, 0, 1, 1]
    torch.manual_seed(100 + rank)  # every rank's RNG differs
    x = torch.arange(rank * N, rank * N + N, dtype=torch.float32)  # N
    x = x[:, None].repeat(1, 3)  # Nx3: row value = global sample index
    crossed = False
    for _ in range(5):
        x_shuf, idx_unshuffle = batch_shuffle_ddp(x)
        all_shuf = concat_all_gather(x_shuf)[:, 0]  # (world*N)
        assert sorted(all_shuf.tolist()) == list(range(WORLD_SIZE * N))
        idx_all = concat_all_gather(idx_unshuffle[None])  # world x (world*N)
        assert torch.equal(idx_all[0], idx_all[1])  # one permutation
        crossed |= bool(((x_shuf[:, 0] // N) != rank).any())
        assert torch.equal(batch_unshuffle_ddp(x_shuf, idx_unshuffle), x)
        ys = batch_unshuffle_ddp(
            [x_shuf, 2 * x_shuf[:, :1], x_shuf.reshape(N, 3, 1, 1)],
            idx_unshuffle)
        assert torch.equal(ys[0], x) and torch.equal(ys[1], 2 * x[:, :1])
        assert torch.equal(ys[2], x.reshape(N, 3, 1, 1))
    assert crossed, 'the shuffle never moved a sample to another rank'


def _check_densecl(rank: int) -> None:
    from mmengine.model import MMDistributedDataParallel
    from mmengine.optim import OptimWrapper

    from densecl_plugin.models.utils import concat_all_gather
    from tiny_models import build_tiny_model
    torch.manual_seed(0)
    model = build_tiny_model(
        'DenseCL', depth=18, base_channels=64, hid_channels=32, feat_dim=16,
        queue_len=10, momentum=0.9,
        # GN (no BN: no batch statistics to shuffle); mmdet's norm_eval and
        # zero_init_residual defaults, as before (norm_eval has no BN to act on)
        backbone=dict(norm_cfg=dict(type='GN', num_groups=8), norm_eval=True,
                      zero_init_residual=True))
    ddp = MMDistributedDataParallel(module=model, broadcast_buffers=False,
                                    find_unused_parameters=False)
    optim = OptimWrapper(torch.optim.SGD(ddp.parameters(), lr=0.1))
    torch.manual_seed(10 + rank)  # every rank has its own images
    for step in range(3):
        im_q, im_k = torch.randn(2, 3, 64, 64), torch.randn(2, 3, 64, 64)
        ptr = int(model.queue_ptr)
        log = ddp.train_step(dict(inputs=[im_q, im_k]), optim)
        assert set(log) == {'loss', 'loss_single', 'loss_dense'}
        with torch.no_grad():  # this rank's keys, without any shuffle
            k_b = model.encoder_k.module[0](im_k)[-1]
            k, _, k2 = model.encoder_k.module[1]((k_b, ))
        cols = (ptr + torch.arange(2 * WORLD_SIZE)) % 10
        for name, keys in (('queue', k), ('queue2', k2)):
            queue = getattr(model, name)
            expected = concat_all_gather(F.normalize(keys, dim=1))  # 4xD
            torch.testing.assert_close(queue[:, cols], expected.t(),
                                       rtol=1e-5, atol=1e-5)
            both = concat_all_gather(queue[None])  # 2xDxK
            assert torch.equal(both[0], both[1]), f'{name} differs'
            ptrs = concat_all_gather(getattr(model, f'{name}_ptr'))
            assert ptrs.tolist() == [(4 * step + 4) % 10] * 2
        params = concat_all_gather(model.neck.mlp2[0].weight[None])
        assert torch.equal(params[0], params[1])


def _worker(rank: int, port: int) -> None:
    torch.set_num_threads(1)
    torch_dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                                  rank=rank, world_size=WORLD_SIZE)
    try:
        _check_dist_utils(rank)
        _check_densecl(rank)
    finally:
        torch_dist.destroy_process_group()


def test_ddp_shuffle_and_queues():
    mp.spawn(_worker, args=(_free_port(), ), nprocs=WORLD_SIZE, join=True)


def test_not_distributed_shuffle_is_local_permutation():
    from densecl_plugin.models.utils import (batch_shuffle_ddp,
                                             batch_unshuffle_ddp)
    x = torch.arange(6.)[:, None]
    x_shuf, idx_unshuffle = batch_shuffle_ddp(x)
    assert sorted(x_shuf.flatten().tolist()) == list(range(6))
    assert torch.equal(batch_unshuffle_ddp(x_shuf, idx_unshuffle), x)
