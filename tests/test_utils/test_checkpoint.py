# Copyright (c) densecl_plugin contributors. All rights reserved.
"""``torch.load`` reads MMEngine checkpoints, and nothing unsafe."""
import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

import densecl_plugin  # noqa: F401 (registers the allow-list)


def test_weights_only_is_still_the_default():
    # the fix must not work by turning safety off
    assert os.environ.get('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD') in (None, '0')


def test_message_hub_state_loads_with_weights_only(tmp_path):
    hub = MessageHub.get_instance('test_checkpoint_hub')
    for i in range(5):
        hub.update_scalar('train/loss', float(i) * 0.5)
        hub.update_scalar('train/lr', np.float64(0.1))
    hub.update_info('iter', 5)
    path = tmp_path / 'ckpt.pth'
    torch.save({'meta': {'seed': 0}, 'message_hub': hub.state_dict(),
                'state_dict': {'w': torch.ones(2)}}, path)
    ckpt = torch.load(path)  # weights_only=True: torch's default
    buf = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer)
    assert buf.mean(5) == pytest.approx(1.0)
    assert buf.max() == pytest.approx(2.0)


class Evil:
    """Unpickling this runs code: weights_only must still refuse it."""

    def __reduce__(self):
        return (os.system, ('echo pwned',))


def test_arbitrary_globals_are_still_refused(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'x': Evil()}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)


class Sneaky:
    """``getattr`` on an allowed class, reaching for a non-statistic."""

    def __init__(self, owner, name):
        self.owner, self.name = owner, name

    def __reduce__(self):
        return (getattr, (self.owner, self.name))


@pytest.mark.parametrize('owner,name', [(HistoryBuffer, '__init__'),
                                        (HistoryBuffer, 'update'),
                                        (np.ndarray, 'tofile')])
def test_getattr_is_only_allowed_for_history_buffer_statistics(
        tmp_path, owner, name):
    path = tmp_path / 'sneaky.pth'
    torch.save({'x': Sneaky(owner, name)}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)


def test_runner_checkpoint_loads_in_a_fresh_process(tmp_path):
    """A new process has created no HistoryBuffer yet (its class-level
    statistics registry is still empty) and must still load the file."""
    import subprocess
    import sys
    hub = MessageHub.get_instance('test_checkpoint_fresh')
    hub.update_scalar('train/loss', 1.5)
    path = tmp_path / 'ckpt.pth'
    torch.save({'message_hub': hub.state_dict()}, path)
    code = ('import densecl_plugin, torch, sys; '
            'ck = torch.load(sys.argv[1]); '
            "print(ck['message_hub']['log_scalars']['train/loss'].current())")
    out = subprocess.run([sys.executable, '-c', code, str(path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == '1.5'
