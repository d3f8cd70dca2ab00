# Copyright (c) densecl_plugin contributors. All rights reserved.
"""ContrastiveHead: its one entry point computes the InfoNCE."""
import pytest
import torch
import torch.nn.functional as F

from densecl_plugin.models.heads import ContrastiveHead


def test_queue_path_agrees_with_reference():
    torch.manual_seed(0)
    q = F.normalize(torch.randn(6, 8, dtype=torch.float64), dim=1)
    k = F.normalize(torch.randn(6, 8, dtype=torch.float64), dim=1)
    queue = F.normalize(torch.randn(8, 20, dtype=torch.float64), dim=0)
    head = ContrastiveHead(temperature=0.2, chunk_size=4)
    pos = (q * k).sum(1, keepdim=True)  # Nx1
    neg = q @ queue  # NxK
    # reference: -log softmax of the positive, by hand
    logits = torch.cat([pos, neg], 1) / 0.2
    ref = (logits.exp().sum(1).log() - logits[:, 0]).mean()
    torch.testing.assert_close(head.loss_queue(q, k, queue), ref)
    assert head.loss_queue(q.float(), k.float(),
                           queue.float()).dtype == torch.float32
    with torch.autocast('cpu', dtype=torch.bfloat16):  # float32 under autocast
        out = head.loss_queue(q.float(), k.float(), queue.float())
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref.float())
    # one entry point: the logits path of mmpretrain is not offered
    assert not hasattr(head, 'loss')


def test_default_temperature_and_validation():
    assert ContrastiveHead().temperature == 0.1
    for bad in (0, -1., None):
        with pytest.raises(ValueError, match='temperature'):
            ContrastiveHead(temperature=bad)
    with pytest.raises(ValueError, match='chunk_size'):
        ContrastiveHead(chunk_size=-2)
