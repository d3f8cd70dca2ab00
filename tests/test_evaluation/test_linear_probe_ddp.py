# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The linear probe under real 2-process DDP (gloo on CPU).

Checks what only multi-process runs can break: MMEngine's DDP wrapper
accepts a model whose backbone has no trainable parameters, the head's
gradients are averaged (both ranks hold the same head after a step on
different data, and it equals the single-process step on the whole batch),
the backbone stays bit-identical, and :class:`Accuracy` gathers the results
of both ranks.
"""
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from mmengine.structures import BaseDataElement

R18 = dict(type='mmdet.ResNet', depth=18, out_indices=(3, ))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _model():
    from densecl_plugin.evaluation import LinearClassifier
    torch.manual_seed(0)
    model = LinearClassifier(backbone=R18, in_channels=512, num_classes=3)
    model.init_weights()
    return model


def _batch():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(4, 3, 32, 32, generator=g) * 255
    labels = torch.tensor([0, 1, 2, 1])
    return x, labels


def _step(model, x, labels):
    from mmengine.optim import OptimWrapper
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=30.,
                                         momentum=0.9))
    data = dict(inputs=x,
                data_samples=[BaseDataElement(gt_label=y.view(1))
                              for y in labels])
    model.train_step(data, optim)


def _worker(rank, world_size, port, out_dir):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.distributed.init_process_group('gloo', rank=rank,
                                         world_size=world_size)
    torch.set_num_threads(1)
    from mmengine.model import MMDistributedDataParallel

    from densecl_plugin.evaluation import Accuracy
    model = _model()
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    ddp = MMDistributedDataParallel(module=model)
    x, labels = _batch()
    half = slice(2 * rank, 2 * rank + 2)
    _step(ddp, x[half], labels[half])
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, before[k]), k

    metric = Accuracy(topk=(1, 2))
    scores = torch.tensor([[.9, .1, 0.], [.2, .3, .5], [.6, .3, .1],
                           [.1, .8, .1]])  # labels 0, 1, 2, 1
    metric.process({}, [dict(pred_score=s, gt_label=y.view(1))
                        for s, y in zip(scores[half], labels[half])])
    result = metric.evaluate(size=4)
    torch.save(dict(head=model.head.state_dict(), acc=result),
               os.path.join(out_dir, f'rank{rank}.pth'))
    torch.distributed.destroy_process_group()


@pytest.mark.timeout(300)
def test_two_rank_ddp_linear_probe(tmp_path):
    # DDP averages the per-rank mean losses' gradients = one step on the
    # whole batch in a single process
    single = _model()
    _step(single, *_batch())
    # spawn, not fork: in a full test session the parent has threads by now
    # (the torch profiler's, tqdm's monitor, OpenMP pools), and a forked
    # child that inherits a lock one of them held hangs (it did, once, in
    # `make test`: the 300 s timeout)
    mp.start_processes(_worker, args=(2, _free_port(), str(tmp_path)),
                       nprocs=2, start_method='spawn')
    r0, r1 = (torch.load(tmp_path / f'rank{r}.pth') for r in (0, 1))
    for k in r0['head']:
        assert torch.equal(r0['head'][k], r1['head'][k]), k
    for k, v in single.head.state_dict().items():
        torch.testing.assert_close(r0['head'][k], v, rtol=1e-5, atol=1e-6)
    # all 4 samples counted: top-1 hits are samples 0 and 3; top-2 adds
    # sample 1 ({2, 1} holds label 1), not sample 2 ({0, 1} misses label 2)
    assert r0['acc'] == {'accuracy/top1': pytest.approx(50.),
                         'accuracy/top2': pytest.approx(75.)}
