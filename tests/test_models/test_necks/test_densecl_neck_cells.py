# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The dense branch's fused cell MLP (``_CellMLP``) against the plain 1x1
convolutions: outputs and every gradient equal (fp32, 1e-6 relative), and
the cells copy is not kept for backward."""
import pytest
import torch
import torch.nn.functional as F

from densecl_plugin.models.necks import DenseCLNeck


def _conv_reference(neck, x):
    """mlp2 as the authors' convolutions, on the (N, C, S, S) map."""
    h = F.conv2d(x, neck.mlp2[0].weight, neck.mlp2[0].bias).relu()
    y = F.conv2d(h, neck.mlp2[2].weight, neck.mlp2[2].bias)  # NxDxSxS
    return y.flatten(2)  # NxDxS^2


def _close(a, b, rel=1e-6):
    torch.testing.assert_close(a, b, rtol=rel, atol=rel * float(b.abs().max()))


@pytest.mark.parametrize('N,S,num_grid,hid', [
    (3, 3, None, 48), (2, 6, 3, 48), (1, 1, None, 64), (20, 5, None, 64),
    (17, 7, None, 64)])  # hid == C: the input gradient reuses the hidden's
def test_fused_cells_equal_convolutions(N, S, num_grid, hid):
    """Blocks of 8 images at S=7: 17 images run as 8 + 8 + 1."""
    torch.manual_seed(0)
    neck = DenseCLNeck(64, hid, 16, num_grid=num_grid)
    x = torch.randn(N, 64, S, S)
    gy = torch.randn(N, 16, (num_grid or S) ** 2)

    def run(fn):
        neck.zero_grad(set_to_none=True)
        x_ = x.clone().requires_grad_(True)
        y = fn(x_)
        (y * gy).sum().backward()
        return y.detach(), x_.grad, {n: p.grad.clone() for n, p in
                                     neck.mlp2.named_parameters()}

    pool = (lambda t: t) if num_grid is None else neck.pool
    y, gx, gp = run(lambda t: neck((t, ))[1])
    y_ref, gx_ref, gp_ref = run(lambda t: _conv_reference(neck, pool(t)))
    _close(y, y_ref)
    _close(gx, gx_ref)
    assert set(gp) == set(gp_ref) == {'0.weight', '0.bias', '2.weight',
                                      '2.bias'}
    for name in gp:
        _close(gp[name], gp_ref[name])


def test_the_cells_copy_is_not_saved():
    """Only the backbone map itself (and the weights) are saved for
    backward, not a (N*S^2, C) copy of it."""
    torch.manual_seed(0)
    neck = DenseCLNeck(64, 48, 16)
    x = torch.randn(4, 64, 3, 3, requires_grad=True)
    known = {x.untyped_storage().data_ptr()} | {
        p.untyped_storage().data_ptr() for p in neck.parameters()}
    fresh = []

    def pack(t):
        if t.untyped_storage().data_ptr() not in known:
            fresh.append(tuple(t.shape))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = neck._cellwise_mlp2(x.flatten(2).transpose(1, 2))
    assert y.shape == (4, 9, 16)
    assert fresh == []


def test_no_grad_path_equals_convolutions():
    """The key encoder's path (no autograd): two single products."""
    torch.manual_seed(0)
    neck = DenseCLNeck(64, 64, 16)
    x = torch.randn(10, 64, 7, 7)
    with torch.no_grad():
        _close(neck((x, ))[1], _conv_reference(neck, x))
