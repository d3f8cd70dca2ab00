# Copyright (c) densecl_plugin contributors. All rights reserved.
"""UnlabeledImageDataset on small trees of real photos."""
import copy
import logging
import os
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest
import torch
from mmengine.dataset import default_collate
from mmengine.logging import MMLogger

from densecl_plugin.datasets import BadImageError, UnlabeledImageDataset
from densecl_plugin.registry import DATASETS

PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiView', num_views=2, transforms=[[
        dict(type='RandomResizedCrop', size=16),
        dict(type='RandomFlip'),
    ]]),
    dict(type='PackSelfSupInputs'),
]


def _copy(src: str, dst: str) -> str:
    os.makedirs(osp.dirname(dst), exist_ok=True)
    if dst.lower().endswith('.png'):
        cv2.imwrite(dst, cv2.imread(src))
    else:
        shutil.copy(src, dst)
    return dst


def _paths(ds):
    return [ds.get_data_info(i)['img_path'] for i in range(len(ds))]


def test_folder_tree_recursive_case_insensitive_sorted(tmp_path,
                                                       real_image_paths):
    root = tmp_path / 'photos'
    a, b, c, d, e = real_image_paths[:5]
    expected = [
        _copy(a, str(root / 'a.JPG')),
        _copy(b, str(root / 'deep' / 'er' / 'b.jpeg')),
        _copy(c, str(root / 'deep' / 'c.PNG')),
        _copy(d, str(root / 'z.Jpg')),
    ]
    (root / 'notes.txt').write_text('not an image')
    _copy(e, str(root / '.hidden.jpg'))
    _copy(e, str(root / '.cache' / 'e.jpg'))
    ds = DATASETS.build(dict(type='UnlabeledImageDataset', data_root=str(root),
                             pipeline=PIPELINE))
    assert _paths(ds) == sorted(expected)
    np.random.seed(0)
    sample = ds[2]
    assert sample['data_samples'].img_path == sorted(expected)[2]
    assert [t.shape for t in sample['inputs']] == [(3, 16, 16)] * 2


def test_imagenet_layout_folder_and_meta_list(tmp_path, real_image_paths):
    root = tmp_path / 'imagenet'
    files = []
    for i, path in enumerate(real_image_paths[:4]):
        wnid = f'n0144076{i % 2}'
        rel = f'{wnid}/{wnid}_{i}.JPEG'
        _copy(path, str(root / 'train' / rel))
        files.append((rel, i % 2))
    (root / 'meta').mkdir()
    listed = list(reversed(files))  # a list file keeps its own order
    (root / 'meta' / 'train.txt').write_text(
        ''.join(f'{rel} {label}\n' for rel, label in listed))
    scanned = UnlabeledImageDataset(data_root=str(root),
                                    data_prefix=dict(img_path='train'))
    assert _paths(scanned) == sorted(
        osp.join(str(root), 'train', rel) for rel, _ in files)
    from_list = UnlabeledImageDataset(data_root=str(root),
                                      ann_file='meta/train.txt',
                                      data_prefix=dict(img_path='train/'),
                                      pipeline=PIPELINE)
    assert [osp.normpath(p) for p in _paths(from_list)] == [
        osp.join(str(root), 'train', rel) for rel, _ in listed
    ]
    assert len(from_list[0]['inputs']) == 2


def test_coco_train2017_folder(tmp_path, real_image_paths):
    root = tmp_path / 'coco'
    expected = [
        _copy(p, str(root / 'train2017' / f'{i:012d}.jpg'))
        for i, p in enumerate(real_image_paths[:3], start=1)
    ]
    (root / 'annotations').mkdir()
    (root / 'annotations' / 'instances_train2017.json').write_text('{}')
    ds = UnlabeledImageDataset(data_root=str(root), data_prefix='train2017',
                               pipeline=PIPELINE)
    assert _paths(ds) == expected
    batch = default_collate([ds[i] for i in range(3)])
    assert [v.shape for v in batch['inputs']] == [(3, 3, 16, 16)] * 2


def test_list_file_labels_comments_spaces_absolute(tmp_path,
                                                   real_image_paths):
    root = tmp_path / 'imgs'
    spaced = _copy(real_image_paths[0], str(root / 'my photo 1.jpg'))
    plain = _copy(real_image_paths[1], str(root / 'sub' / 'b.png'))
    outside = _copy(real_image_paths[2], str(tmp_path / 'elsewhere' / 'c.jpg'))
    ann = tmp_path / 'list.txt'
    ann.write_text(f'# a comment\n\nmy photo 1.jpg 3\n  sub/b.png  \n'
                   f'{outside}\n')
    ds = UnlabeledImageDataset(ann_file=str(ann),
                               data_prefix=dict(img_path=str(root)))
    assert [osp.normpath(p) for p in _paths(ds)] == [spaced, plain, outside]


def test_empty_folder_error_names_folder_and_extensions(tmp_path):
    (tmp_path / 'empty' / 'sub').mkdir(parents=True)
    (tmp_path / 'empty' / 'sub' / 'readme.txt').write_text('x')
    with pytest.raises(FileNotFoundError) as info:
        UnlabeledImageDataset(data_root=str(tmp_path / 'empty'))
    message = str(info.value)
    assert str(tmp_path / 'empty') in message
    assert '.jpg' in message and '.webp' in message and '.ppm' in message


def test_missing_folder_and_list_file_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere'):
        UnlabeledImageDataset(data_root=str(tmp_path / 'nowhere'))
    with pytest.raises(FileNotFoundError, match='no_list.txt'):
        UnlabeledImageDataset(data_root=str(tmp_path),
                              ann_file='no_list.txt')
    (tmp_path / 'blank.txt').write_text('\n# only a comment\n')
    with pytest.raises(ValueError, match='blank.txt'):
        UnlabeledImageDataset(data_root=str(tmp_path), ann_file='blank.txt')
    with pytest.raises(ValueError, match='no image folder'):
        UnlabeledImageDataset()


def test_missing_list_entry_names_entry_and_line(tmp_path, real_image_paths):
    _copy(real_image_paths[0], str(tmp_path / 'img' / 'a.jpg'))
    (tmp_path / 'list.txt').write_text('a.jpg 0\n\nb/missing.jpg 1\n')
    with pytest.raises(FileNotFoundError) as info:
        UnlabeledImageDataset(data_root=str(tmp_path), ann_file='list.txt',
                              data_prefix=dict(img_path='img'))
    message = str(info.value)
    assert 'list.txt' in message and 'line 3' in message
    assert "'b/missing.jpg'" in message


@pytest.fixture
def tree_with_bad_images(tmp_path, real_image_paths):
    """3 real photos, a truncated JPEG and a file of junk bytes."""
    root = tmp_path / 'mixed'
    good = [_copy(p, str(root / f'good_{i}.jpg'))
            for i, p in enumerate(real_image_paths[:3])]
    data = open(real_image_paths[3], 'rb').read()
    truncated = root / 'bad_truncated.jpg'
    truncated.write_bytes(data[:len(data) // 2])
    corrupt = root / 'bad_corrupt.png'
    corrupt.write_bytes(np.random.RandomState(0).bytes(2000))
    return str(root), good, [str(corrupt), str(truncated)]


def test_unreadable_images_raise_an_error_naming_the_file(
        tree_with_bad_images):
    root, good, bad = tree_with_bad_images
    ds = UnlabeledImageDataset(data_root=root, pipeline=PIPELINE)
    paths = _paths(ds)
    assert paths == sorted(good + bad)
    for path in bad:
        with pytest.raises(BadImageError, match='skip_bad_images') as info:
            ds[paths.index(path)]
        assert repr(path) in str(info.value)
    # a file that vanished after the listing is named too
    os.remove(good[0])
    with pytest.raises(BadImageError, match=repr(good[0])):
        ds[paths.index(good[0])]


class _ListHandler(logging.Handler):

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_skip_bad_images_replaces_counts_and_logs(tree_with_bad_images):
    root, good, bad = tree_with_bad_images
    logger = MMLogger.get_current_instance()
    handler = _ListHandler()
    logger.addHandler(handler)
    try:
        ds = UnlabeledImageDataset(data_root=root, pipeline=PIPELINE,
                                   skip_bad_images=True)
        np.random.seed(0)
        seen = [ds[i]['data_samples'].img_path for i in range(len(ds))]
    finally:
        logger.removeHandler(handler)
    assert all(path in good for path in seen)
    assert ds.num_skipped >= 2  # both bad files, plus any bad replacement
    skipped = [m for m in handler.messages if 'skipped unreadable image' in m]
    assert len(skipped) == ds.num_skipped
    for path in bad:
        assert any(repr(path) in m for m in skipped)


def test_skip_count_is_shared_with_dataloader_workers(tree_with_bad_images):
    root, good, bad = tree_with_bad_images
    ds = UnlabeledImageDataset(data_root=root, pipeline=PIPELINE,
                               skip_bad_images=True)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=5, num_workers=2, collate_fn=default_collate,
        worker_init_fn=lambda worker_id: np.random.seed(worker_id),
        multiprocessing_context='fork')
    paths = [p for batch in loader for p in
             (s.img_path for s in batch['data_samples'])]
    assert len(paths) == 5 and set(paths) <= set(good)
    assert ds.num_skipped >= 2  # counted in the workers, seen here
    # copies (e.g. get_subset) get their own counter
    subset = ds.get_subset(2)
    assert subset.num_skipped == ds.num_skipped
    subset._skipped.increment()
    assert subset.num_skipped == ds.num_skipped + 1


def test_errors_of_other_transforms_name_the_file(tmp_path, real_image_paths):
    path = _copy(real_image_paths[0], str(tmp_path / 'a.jpg'))

    def broken(results):
        raise RuntimeError('boom')

    ds = UnlabeledImageDataset(data_root=str(tmp_path),
                               pipeline=[dict(type='LoadImageFromFile'),
                                         broken],
                               skip_bad_images=True)
    with pytest.raises(RuntimeError, match='boom') as info:
        ds[0]
    assert any(repr(path) in note for note in info.value.__notes__)
    assert ds.num_skipped == 0


def test_skip_is_for_training_only(tmp_path):
    with pytest.raises(ValueError, match='test_mode'):
        UnlabeledImageDataset(data_root=str(tmp_path), skip_bad_images=True,
                              test_mode=True)


def test_deepcopy_and_pickle_keep_the_count(tree_with_bad_images):
    import pickle
    root, _, _ = tree_with_bad_images
    ds = UnlabeledImageDataset(data_root=root, lazy_init=True,
                               skip_bad_images=True)
    ds._skipped.increment()
    assert copy.deepcopy(ds).num_skipped == 1
    assert pickle.loads(pickle.dumps(ds)).num_skipped == 1
