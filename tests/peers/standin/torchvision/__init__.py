"""Test-only stand-in for the torchvision names mmpretrain and timm import.

Put on ``sys.path`` by ``tests/peers/mmpretrain_peer.py`` and
``tests/peers/timm_peer.py`` only when no working torchvision is installed.
Nothing here computes anything: calling any name raises, so a test that
reached torchvision would fail loudly.
"""
__version__ = '0.0.0+standin'


def _unavailable(name):
    def fn(*args, **kwargs):
        raise RuntimeError(f'torchvision stand-in: {name} was called; the parity '
                           f'tests must not reach torchvision')
    fn.__name__ = name.rsplit('.', 1)[-1]
    return fn
