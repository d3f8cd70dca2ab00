from torchvision import _unavailable


class FrozenBatchNorm2d:
    """Named by timm's norm-layer tables at import; building it raises."""

    def __init__(self, *args, **kwargs):
        _unavailable('torchvision.ops.misc.FrozenBatchNorm2d')()


def __getattr__(name):
    return _unavailable(f'torchvision.ops.misc.{name}')
