# Copyright (c) densecl_plugin contributors. All rights reserved.
"""A labelled image dataset: class folders or a ``path label`` list file.

Covers the ImageNet layouts and any folder-per-class tree::

    <data_root>/<data_prefix>/<class_a>/**/*.JPEG      (class folders)
    <data_root>/<data_prefix>/<class_b>/**/*.JPEG

    <data_root>/<ann_file>:                             (list file)
        n01440764/n01440764_10026.JPEG 0
        ILSVRC2012_val_00000001.JPEG 65

Class folders are sorted by name (ImageNet: by wnid, giving the usual
0..999 order) unless ``classes`` fixes the names and their order.
"""
import os
import os.path as osp
from typing import Callable, List, Optional, Sequence, Union

from mmengine.dataset import BaseDataset

from densecl_plugin.registry import DATASETS

#: image file extensions, compared case-insensitively
IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif',
                  '.tiff', '.webp')


@DATASETS.register_module()
class ClassFolderDataset(BaseDataset):
    """Images with class labels, from class folders or a list file.

    Each data info is ``dict(img_path=..., gt_label=int)``; ``metainfo``
    has ``classes``.

    Args:
        data_root (str): root folder. Defaults to ``''``.
        data_prefix (str | dict): the image folder under ``data_root``
            (``'train'``), or ``dict(img_path='train')``. Defaults to ``''``.
        ann_file (str): a list file (``relative/path label`` per line,
            paths relative to the image folder); empty to scan class
            folders instead. Defaults to ``''``.
        classes (Sequence[str], optional): class names. With class folders:
            the folders to use, in label order (each must exist). With a
            list file: the names of labels ``0..len-1``. Defaults to None
            (sorted folder names; ``'0'``, ``'1'``, ... for a list file).
        extensions (Sequence[str]): image extensions to collect.
            Defaults to :data:`IMG_EXTENSIONS`.
        pipeline (Sequence[dict | Callable]): transforms. Defaults to ``()``.
        **kwargs: other :class:`~mmengine.dataset.BaseDataset` arguments
            (``test_mode``, ``lazy_init``, ``indices``, ...).
    """

    def __init__(self,
                 data_root: str = '',
                 data_prefix: Union[str, dict] = '',
                 ann_file: str = '',
                 classes: Optional[Sequence[str]] = None,
                 extensions: Sequence[str] = IMG_EXTENSIONS,
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 **kwargs) -> None:
        if isinstance(data_prefix, str):
            data_prefix = dict(img_path=data_prefix)
        if set(data_prefix) != {'img_path'}:
            raise ValueError('ClassFolderDataset: data_prefix must be a str '
                             f"or dict(img_path=...), got {data_prefix!r}")
        if classes is not None:
            classes = tuple(str(c) for c in classes)
            if len(set(classes)) != len(classes) or not classes:
                raise ValueError('ClassFolderDataset: classes must be '
                                 f'non-empty and unique, got {classes!r}')
        self.extensions = tuple(e.lower() for e in extensions)
        super().__init__(
            ann_file=ann_file,
            metainfo=dict(classes=classes) if classes is not None else None,
            data_root=data_root,
            data_prefix=data_prefix,
            pipeline=list(pipeline),
            **kwargs)

    @property
    def img_dir(self) -> str:
        """The image folder: ``data_root`` joined with ``data_prefix``."""
        return self.data_prefix['img_path']

    def load_data_list(self) -> List[dict]:
        """Read the list file, or scan the class folders.

        Returns:
            list[dict]: ``dict(img_path=..., gt_label=...)`` per image.
        """
        if self.ann_file:
            data_list = self._load_list_file()
        else:
            data_list = self._scan_class_folders()
        return data_list

    def _scan_class_folders(self) -> List[dict]:
        root = self.img_dir
        if not osp.isdir(root):
            raise FileNotFoundError(
                f'ClassFolderDataset: image folder {root!r} does not exist '
                '(data_root + data_prefix); expected one sub-folder of '
                'images per class')
        found = sorted(e.name for e in os.scandir(root)
                       if e.is_dir(follow_symlinks=True)
                       and not e.name.startswith('.'))
        classes = self._metainfo.get('classes')
        if classes is None:
            if not found:
                raise FileNotFoundError(
                    f'ClassFolderDataset: {root!r} has no class sub-folders; '
                    'expected <root>/<class>/<image> (or pass ann_file)')
            classes = tuple(found)
            self._metainfo['classes'] = classes
        else:
            absent = [c for c in classes if c not in found]
            if absent:
                raise FileNotFoundError(
                    f'ClassFolderDataset: no folder for classes {absent[:5]} '
                    f'in {root!r} (found {found[:5]}...)')
        data_list = []
        for label, name in enumerate(classes):
            folder = osp.join(root, name)
            files = []
            for dirpath, dirnames, filenames in os.walk(folder,
                                                        followlinks=True):
                dirnames.sort()
                files += [osp.join(dirpath, f) for f in sorted(filenames)
                          if osp.splitext(f)[1].lower() in self.extensions]
            if not files:
                raise FileNotFoundError(
                    f'ClassFolderDataset: class folder {folder!r} has no '
                    f'images with extensions {self.extensions}')
            data_list += [dict(img_path=f, gt_label=label) for f in files]
        return data_list

    def _load_list_file(self) -> List[dict]:
        path = self.ann_file
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'ClassFolderDataset: list file {path!r} does not exist '
                '(data_root + ann_file)')
        classes = self._metainfo.get('classes')
        data_list = []
        with open(path) as f:
            for lineno, line in enumerate(f, start=1):
                line = line.strip()
                if not line:
                    continue
                parts = line.rsplit(maxsplit=1)
                if len(parts) != 2 or not parts[1].lstrip('-').isdigit():
                    raise ValueError(
                        f'{path}:{lineno}: expected "<relative/path> '
                        f'<int label>", got {line!r}')
                label = int(parts[1])
                if label < 0 or (classes is not None
                                 and label >= len(classes)):
                    raise ValueError(
                        f'{path}:{lineno}: label {label} is out of range '
                        f'[0, {len(classes) if classes else "inf"})')
                data_list.append(dict(
                    img_path=osp.join(self.img_dir, parts[0]),
                    gt_label=label))
        if not data_list:
            raise ValueError(f'ClassFolderDataset: list file {path!r} has '
                             'no entries')
        if classes is None:
            num = max(d['gt_label'] for d in data_list) + 1
            self._metainfo['classes'] = tuple(str(i) for i in range(num))
        return data_list
