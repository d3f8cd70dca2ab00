# Copyright (c) densecl_plugin contributors. All rights reserved.
"""ContrastiveHead: both entry points compute the same InfoNCE."""
import pytest
import torch
import torch.nn.functional as F

from densecl_plugin.models.heads import ContrastiveHead


def test_logits_and_queue_paths_agree_with_reference():
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
    torch.testing.assert_close(head.loss(pos, neg), ref)
    torch.testing.assert_close(head.loss_queue(q, k, queue), ref)
    assert head.loss(pos.float(), neg.float()).dtype == torch.float32


def test_default_temperature_and_validation():
    assert ContrastiveHead().temperature == 0.1
    for bad in (0, -1., None):
        with pytest.raises(ValueError, match='temperature'):
            ContrastiveHead(temperature=bad)
    with pytest.raises(ValueError, match='chunk_size'):
        ContrastiveHead(chunk_size=-2)
