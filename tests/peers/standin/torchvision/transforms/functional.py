from torchvision import _unavailable
from torchvision.transforms.transforms import InterpolationMode  # noqa: F401


def __getattr__(name):
    return _unavailable(f'torchvision.transforms.functional.{name}')
