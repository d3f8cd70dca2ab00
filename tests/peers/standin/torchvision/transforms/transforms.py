import enum

from torchvision import _unavailable


class InterpolationMode(enum.Enum):
    NEAREST = 'nearest'
    BILINEAR = 'bilinear'
    BICUBIC = 'bicubic'
    BOX = 'box'
    HAMMING = 'hamming'
    LANCZOS = 'lanczos'


def __getattr__(name):
    return _unavailable(f'torchvision.transforms.transforms.{name}')
