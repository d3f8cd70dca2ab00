# Copyright (c) densecl_plugin contributors. All rights reserved.
"""``docs/densecl_in_plain_torch.md`` runs and equals the real DenseCL loss.

The page's single ``python`` block is executed; its ``densecl_loss`` is fed
the outputs of the model's own query backbone and neck, of its key encoder
(after the step's momentum update) and the queues as they were before the
step, and must give the model's losses and the same query gradients. A
single process: the key batch shuffle is a local permutation, which
train-mode BN (batch statistics) cannot see, so the key encoder run on the
unshuffled key view gives the model's keys.
"""
import os.path as osp
import re

import pytest
import torch
import torch.nn.functional as F

from tiny_models import build_tiny_model

DOC = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__))))), 'docs', 'densecl_in_plain_torch.md')
#: fp32 on the same tensors; only the summation order differs
TOL = dict(rtol=1e-5, atol=1e-6)


def doc_namespace() -> dict:
    """Execute the page's one ``python`` block; return its globals."""
    with open(DOC, encoding='utf-8') as f:
        blocks = re.findall(r'^```python\n(.*?)^```', f.read(), re.M | re.S)
    assert len(blocks) == 1, f'{DOC}: expected one python block'
    assert len(blocks[0].splitlines()) <= 45, 'the page promises ~40 lines'
    namespace: dict = {}
    exec(compile(blocks[0], DOC, 'exec'), namespace)
    return namespace


def test_doc_block_is_one_short_function():
    ns = doc_namespace()
    assert callable(ns['densecl_loss'])


@pytest.mark.parametrize('num_grid', [None, 3])
def test_doc_loss_equals_densecl_loss_and_gradients(num_grid):
    densecl_loss = doc_namespace()['densecl_loss']
    torch.manual_seed(0)
    lam = 0.3
    model = build_tiny_model(
        'DenseCL', depth=18, base_channels=16, hid_channels=32, feat_dim=16,
        queue_len=24, neck=dict(num_grid=num_grid), momentum=0.9,
        loss_lambda=lam, head=dict(type='ContrastiveHead', temperature=0.2))
    model.train()
    g = torch.Generator().manual_seed(1)
    views = [torch.randn(4, 3, 128, 128, generator=g) for _ in range(2)]
    model(views, mode='loss')  # step 1 copies the query into the key encoder
    with torch.no_grad():  # distinct query and key weights for step 2
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.02 * torch.randn_like(p))
    im_q, im_k = [torch.randn(4, 3, 128, 128, generator=g) for _ in range(2)]
    queue, queue2 = model.queue.clone(), model.queue2.clone()  # before step

    query = [p for p in model.parameters() if p.requires_grad]
    losses = model([im_q, im_k], mode='loss')
    assert set(losses) == {'loss_single', 'loss_dense'}
    grads = torch.autograd.grad(sum(losses.values()), query)

    def pool(x_b):  # the cells of the dense branch: the neck's grid
        if num_grid is not None:
            x_b = F.adaptive_avg_pool2d(x_b, num_grid)  # NxCxSxS
        return x_b.flatten(2)  # NxCxS^2

    q_b = model.backbone(im_q)[-1]  # NxCxHxW
    q, q_grid, _ = model.neck([q_b])  # NxD, NxDxS^2
    with torch.no_grad():  # the key encoder as the step left it
        k_b = model.encoder_k.module[0](im_k)[-1]  # NxCxHxW
        k, k_grid, _ = model.encoder_k.module[1]([k_b])  # NxD, NxDxS^2
    args = (q, q_grid, pool(q_b), k, k_grid, pool(k_b), queue, queue2)

    doc = densecl_loss(*args, T=0.2, lam=lam)
    torch.testing.assert_close(doc, sum(losses.values()), **TOL)
    torch.testing.assert_close(densecl_loss(*args, lam=0.) * (1 - lam),
                               losses['loss_single'], **TOL)
    torch.testing.assert_close(densecl_loss(*args, lam=1.) * lam,
                               losses['loss_dense'], **TOL)
    doc_grads = torch.autograd.grad(doc, query)
    assert len(doc_grads) == len(grads) > 50
    for (name, _), a, b in zip(
            [(n, p) for n, p in model.named_parameters() if p.requires_grad],
            doc_grads, grads):
        err = float((a - b).abs().max())  # fp32 summation order only
        assert err <= 1e-5 * float(b.abs().max()), (name, err)
    # the queues moved after the step: the check used the ones before it
    assert not torch.equal(queue, model.queue)


def test_the_names_the_page_points_to_exist():
    """Every ``Class.attribute`` and ``densecl_plugin/...py`` path the page
    names exists, so its map to the optimised modules cannot go stale."""
    import importlib

    from densecl_plugin.models import (BaseMomentumContrast, ContrastiveHead,
                                       DenseCL, DenseCLNeck)
    with open(DOC, encoding='utf-8') as f:
        text = f.read()
    classes = dict(DenseCL=DenseCL, BaseMomentumContrast=BaseMomentumContrast,
                   ContrastiveHead=ContrastiveHead, DenseCLNeck=DenseCLNeck)
    named = re.findall(r'`(\w+)\.(\w+)`', text)
    assert len(named) >= 8
    for cls, attr in named:
        assert hasattr(classes[cls], attr), f'{cls}.{attr}'
    paths = re.findall(r'`(densecl_plugin/[\w/]+)\.py`', text)
    assert len(paths) >= 5
    for path in paths:
        importlib.import_module(path.replace('/', '.'))
