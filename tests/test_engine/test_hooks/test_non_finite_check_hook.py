# Copyright (c) densecl_plugin contributors. All rights reserved.
"""The fused finiteness check against torch.isfinite on every element.

The hook on a real diverging Runner: tests/test_apis/test_faults.py."""
import pytest
import torch

from densecl_plugin.engine.hooks import NonFiniteCheckHook
from densecl_plugin.engine.hooks.non_finite_check_hook import _all_finite


@pytest.mark.parametrize('bad', [None, float('nan'), float('inf'),
                                 -float('inf')])
def test_all_finite_matches_elementwise_reference(bad):
    g = torch.Generator().manual_seed(0)
    tensors = [torch.randn(*s, generator=g) * 1e3
               for s in [(3, 4), (17, ), (2, 3, 5, 5), (1, )]]
    tensors.append(torch.arange(5))  # integer buffers are ignored
    if bad is not None:
        tensors[2].view(-1)[37] = bad
    ref = all(bool(torch.isfinite(t).all()) for t in tensors
              if t.is_floating_point())
    assert _all_finite(tensors) is ref
    # +inf in one tensor and -inf in another do not cancel
    assert _all_finite([torch.tensor([float('inf')]),
                        torch.tensor([-float('inf')])]) is False


@pytest.mark.parametrize('interval', [0, -1, 1.5, True])
def test_interval_is_checked(interval):
    with pytest.raises(ValueError, match='interval'):
        NonFiniteCheckHook(interval=interval)
