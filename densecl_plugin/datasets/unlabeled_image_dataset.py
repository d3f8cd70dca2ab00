# Copyright (c) densecl_plugin contributors. All rights reserved.
"""``UnlabeledImageDataset``: every image of a folder tree or a list file."""
import logging
import multiprocessing
import os
import os.path as osp
import re
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple, Union

from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from densecl_plugin.registry import DATASETS
from .transforms.views import build_pipeline

#: file extensions searched by default (compared case-insensitively)
IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp',
                  '.ppm')

#: how many missing list-file entries an error message names
_MAX_NAMED = 5


class BadImageError(OSError):
    """An image file that cannot be read or decoded.

    Its message names the file. It takes a single message argument so that a
    DataLoader worker can re-raise it in the main process.
    """


class _SharedCounter:
    """An integer shared by a dataset and its DataLoader worker processes.

    The value lives in shared memory: forked workers inherit it and spawned
    workers receive it while being started, so the main process sees the
    workers' increments. Any other copy (``copy.deepcopy``, pickling outside
    process start-up) gets an independent counter with the current value.
    """

    def __init__(self, value: int = 0) -> None:
        self._shared = multiprocessing.Value('q', value)

    @property
    def value(self) -> int:
        """The current value."""
        return int(self._shared.value)

    def increment(self) -> int:
        """Add one and return the new value."""
        with self._shared.get_lock():
            self._shared.value += 1
            return int(self._shared.value)

    def __getstate__(self) -> dict:
        if multiprocessing.context.get_spawning_popen() is not None:
            return dict(shared=self._shared)  # starting a worker: share it
        return dict(value=self.value)

    def __setstate__(self, state: dict) -> None:
        if 'shared' in state:
            self._shared = state['shared']
        else:
            self._shared = multiprocessing.Value('q', state['value'])

    def __deepcopy__(self, memo: dict) -> '_SharedCounter':
        return _SharedCounter(self.value)


def _is_loader(transform: Callable) -> bool:
    """Whether ``transform`` is an image loader (``LoadImageFrom*``)."""
    return any(cls.__name__.startswith('LoadImageFrom')
               for cls in type(transform).__mro__)


def _strip_label(line: str) -> str:
    """``'path label'`` (ImageNet's ``meta/train.txt``) -> ``'path'``."""
    parts = line.rsplit(maxsplit=1)
    if len(parts) == 2 and re.fullmatch(r'[+-]?\d+', parts[1]):
        return parts[0]
    return line


@DATASETS.register_module()
class UnlabeledImageDataset(BaseDataset):
    """All images of a folder tree or of a list file, without labels.

    Sources (local file systems):

    - a folder tree: every file under ``data_prefix['img_path']`` (joined to
      ``data_root``), recursively, following symbolic links, whose extension
      is in ``extensions`` (case-insensitive); names starting with ``.`` are
      skipped (hidden files, macOS ``._*`` resource forks). This covers the
      ImageNet train layout (``data_prefix=dict(img_path='train')`` ->
      ``train/<wnid>/*.JPEG``) and COCO (``img_path='train2017'``). Sorted by
      path, so the order is deterministic.
    - a list file ``ann_file`` (joined to ``data_root``): one image path per
      line, relative to the image folder unless absolute; a trailing integer
      label (ImageNet's ``meta/train.txt``: ``path label``) is ignored, as are
      blank lines and lines starting with ``#``. The file's order is kept.
      Every entry is checked to exist when the dataset is built (one
      directory listing per folder, not one ``stat`` per file).

    Each sample's data info is ``dict(img_path=...)``; the pipeline (usually
    ``LoadImageFromFile``, ``MultiView``, ``PackSelfSupInputs``) does the
    rest. Transform configs are built with the ``densecl_plugin`` registry,
    so the dataset works outside a Runner too.

    Unreadable images: when the pipeline's loader (``LoadImageFrom*``) fails
    on a file (missing, truncated, corrupt), a :class:`BadImageError` naming
    the file is raised. With ``skip_bad_images=True`` the sample is replaced
    by a random other one instead (MMEngine's re-fetch of ``None`` samples,
    numpy's seeded RNG), a warning naming the file is logged and
    :attr:`num_skipped` counts it (across DataLoader workers too). Errors of
    other transforms are re-raised with a note naming the file.

    Args:
        data_root (str): Root that relative ``ann_file`` and
            ``data_prefix`` paths are joined to. Defaults to ''.
        ann_file (str): Optional list file (see above). Defaults to '', which
            scans the image folder.
        data_prefix (dict | str): ``dict(img_path=folder)``, the image folder
            (a plain string is taken as ``img_path``). Defaults to
            ``dict(img_path='')``.
        pipeline (Sequence[dict | Callable]): Transforms. Defaults to ().
        extensions (Sequence[str]): File extensions of a folder scan.
            Defaults to :data:`IMG_EXTENSIONS`.
        skip_bad_images (bool): Replace unreadable images by random other
            ones (training only) instead of raising. Defaults to False.
        **kwargs: Other :class:`mmengine.dataset.BaseDataset` arguments
            (``test_mode``, ``indices``, ``lazy_init``, ``serialize_data``,
            ``max_refetch``, ``metainfo``).

    Examples:
        >>> ds = UnlabeledImageDataset(data_root='data/coco',
        ...                            data_prefix=dict(img_path='train2017'))
        >>> ds = UnlabeledImageDataset(data_root='data/imagenet',
        ...                            ann_file='meta/train.txt',
        ...                            data_prefix=dict(img_path='train'))
    """

    def __init__(self,
                 data_root: str = '',
                 ann_file: str = '',
                 data_prefix: Union[Dict[str, str], str] = dict(img_path=''),
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 extensions: Sequence[str] = IMG_EXTENSIONS,
                 skip_bad_images: bool = False,
                 **kwargs) -> None:
        if isinstance(data_prefix, str):
            data_prefix = dict(img_path=data_prefix)
        if 'img_path' not in data_prefix:
            raise KeyError('UnlabeledImageDataset: data_prefix must have the '
                           f'key "img_path", but got {data_prefix!r}')
        if isinstance(extensions, str):
            extensions = (extensions, )
        self.extensions = tuple(
            e.lower() if e.startswith('.') else '.' + e.lower()
            for e in extensions)
        if not self.extensions:
            raise ValueError('UnlabeledImageDataset: extensions is empty')
        if skip_bad_images and kwargs.get('test_mode', False):
            raise ValueError(
                'UnlabeledImageDataset: skip_bad_images replaces a bad sample '
                'with a random other one, which is for training only; it '
                'cannot be combined with test_mode=True')
        self.skip_bad_images = skip_bad_images
        self._skipped = _SharedCounter()
        super().__init__(
            data_root=data_root,
            ann_file=ann_file,
            data_prefix=data_prefix,
            pipeline=list(build_pipeline(pipeline).transforms),
            **kwargs)

    @property
    def num_skipped(self) -> int:
        """How many unreadable images were skipped so far (all workers)."""
        return self._skipped.value

    @property
    def img_root(self) -> str:
        """The image folder: ``data_prefix['img_path']`` joined to the root."""
        return self.data_prefix['img_path']

    def load_data_list(self) -> List[dict]:
        """List the images of the list file or the folder tree.

        Returns:
            list[dict]: ``dict(img_path=...)`` per image, in order.
        """
        if self.ann_file:
            paths = self._read_list_file(self.ann_file)
        else:
            paths = self._scan_folder(self.img_root)
        return [dict(img_path=path) for path in paths]

    def _scan_folder(self, root: str) -> List[str]:
        """Every image file under ``root`` (recursive), sorted."""
        if not root:
            raise ValueError(
                'UnlabeledImageDataset: no image folder given: set data_root '
                'and/or data_prefix=dict(img_path=...), or ann_file')
        if not osp.isdir(root):
            raise FileNotFoundError(
                f'UnlabeledImageDataset: image folder {root!r} does not exist '
                f'or is not a folder (data_root={self.data_root!r}, '
                f'data_prefix={self.data_prefix!r})')
        paths, visited = [], set()
        for folder, subfolders, files in os.walk(root, followlinks=True):
            real = osp.realpath(folder)
            if real in visited:  # a symbolic-link cycle
                subfolders[:] = []
                continue
            visited.add(real)
            subfolders[:] = [d for d in subfolders if not d.startswith('.')]
            paths.extend(
                osp.join(folder, f) for f in files if not f.startswith('.')
                and osp.splitext(f)[1].lower() in self.extensions)
        if not paths:
            raise FileNotFoundError(
                f'UnlabeledImageDataset: no images found under {root!r} '
                f'(searched recursively for the extensions '
                f'{", ".join(self.extensions)}, case-insensitive)')
        return sorted(paths)

    def _read_list_file(self, ann_file: str) -> List[str]:
        """The image paths of a list file, each checked to exist."""
        if not osp.isfile(ann_file):
            raise FileNotFoundError(
                f'UnlabeledImageDataset: list file {ann_file!r} does not '
                f'exist (ann_file joined to data_root={self.data_root!r})')
        entries: List[Tuple[int, str]] = []  # (line number, entry)
        with open(ann_file, encoding='utf-8') as f:
            for number, line in enumerate(f, start=1):
                line = line.strip()
                if line and not line.startswith('#'):
                    entries.append((number, _strip_label(line)))
        if not entries:
            raise ValueError(f'UnlabeledImageDataset: list file {ann_file!r} '
                             'has no image entries')
        listings: Dict[str, Set[str]] = {}

        def exists(path: str) -> bool:
            folder, name = osp.split(path)
            if folder not in listings:
                try:
                    listings[folder] = set(os.listdir(folder or '.'))
                except OSError:
                    listings[folder] = set()
            return name in listings[folder] or osp.isfile(path)

        paths, missing = [], []
        for number, entry in entries:
            path = osp.join(self.img_root, entry)
            paths.append(path)
            if not exists(path):
                missing.append(f'line {number}: {entry!r} (looked for '
                               f'{path!r})')
        if missing:
            more = len(missing) - _MAX_NAMED
            raise FileNotFoundError(
                f'UnlabeledImageDataset: {len(missing)} entries of list file '
                f'{ann_file!r} do not exist under the image folder '
                f'{self.img_root!r}:\n  ' + '\n  '.join(missing[:_MAX_NAMED]) +
                (f'\n  ... and {more} more' if more > 0 else ''))
        return paths

    def prepare_data(self, idx: int) -> Optional[dict]:
        """Run the pipeline on sample ``idx``, naming the file on errors.

        Args:
            idx (int): The sample index.

        Returns:
            dict | None: The pipeline's output; None when the image was
            skipped (``skip_bad_images``) or a transform returned None.
        """
        results = self.get_data_info(idx)
        path = results['img_path']
        for transform in self.pipeline.transforms:
            try:
                results = transform(results)
            except Exception as error:
                if not _is_loader(transform):
                    error.add_note(f'{type(self).__name__}: raised by '
                                   f'{type(transform).__name__} on image '
                                   f'{path!r} (sample {idx})')
                    raise
                reason = f'{type(error).__name__}: {error}'
                if not self.skip_bad_images:
                    raise BadImageError(
                        f'cannot read image {path!r} (sample {idx} of '
                        f'{type(self).__name__}): {reason}. Replace or remove '
                        'the file, or set skip_bad_images=True to train on '
                        'other images instead') from error
                self._skip(path, reason)
                return None
            if results is None:
                if _is_loader(transform):
                    self._skip(path, 'the loader returned None')
                return None
        return results

    def _skip(self, path: str, reason: str) -> None:
        """Count and log a skipped image."""
        count = self._skipped.increment()
        print_log(
            f'{type(self).__name__}: skipped unreadable image {path!r} '
            f'({reason}); {count} image(s) skipped so far',
            logger='current',
            level=logging.WARNING)


__all__ = ['UnlabeledImageDataset', 'BadImageError', 'IMG_EXTENSIONS']
