from torchvision import _unavailable


class RandomResizedCrop:
    """Only subclassed by mmpretrain (``MAERandomResizedCrop``) at import;
    building it raises."""

    def __init__(self, *args, **kwargs):
        _unavailable('torchvision.transforms.RandomResizedCrop')()


class ToTensor:
    """Only subclassed by timm (``MaybeToTensor``) at import; building it
    raises."""

    def __init__(self, *args, **kwargs):
        _unavailable('torchvision.transforms.ToTensor')()


def __getattr__(name):
    return _unavailable(f'torchvision.transforms.{name}')
