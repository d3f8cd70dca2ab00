# Copyright (c) densecl_plugin contributors. All rights reserved.
"""ClassFolderDataset: class folders, list files, and clear errors."""
import os.path as osp
import shutil

import pytest

from densecl_plugin.evaluation import ClassFolderDataset


@pytest.fixture
def tree(tmp_path, real_image_paths):
    """train/<wnid>/ with nested folders, mixed-case extensions, non-images."""
    root = tmp_path / 'imagenet'
    layout = {
        'n02': ['b.JPEG', 'a.jpg', 'sub/c.png', 'notes.txt'],
        'n01': ['x.JPEG'],
    }
    for cls, files in layout.items():
        for i, name in enumerate(files):
            path = root / 'train' / cls / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if name.endswith('.txt'):
                path.write_text('not an image')
            else:
                shutil.copy(real_image_paths[i], path)
    (root / 'train' / '.cache').mkdir()  # hidden folders are not classes
    return root


def test_class_folders_sorted_by_name(tree):
    ds = ClassFolderDataset(data_root=str(tree), data_prefix='train')
    assert ds.metainfo['classes'] == ('n01', 'n02')
    items = [(osp.relpath(d['img_path'], tree / 'train'), d['gt_label'])
             for d in (ds.get_data_info(i) for i in range(len(ds)))]
    assert items == [('n01/x.JPEG', 0), ('n02/a.jpg', 1), ('n02/b.JPEG', 1),
                     ('n02/sub/c.png', 1)]


def test_classes_fix_the_label_order(tree):
    ds = ClassFolderDataset(data_root=str(tree), data_prefix='train',
                            classes=['n02', 'n01'])
    labels = {osp.basename(ds.get_data_info(i)['img_path']):
              ds.get_data_info(i)['gt_label'] for i in range(len(ds))}
    assert labels == {'a.jpg': 0, 'b.JPEG': 0, 'c.png': 0, 'x.JPEG': 1}


def test_list_file(tree):
    meta = tree / 'meta'
    meta.mkdir()
    (meta / 'train.txt').write_text('n02/a.jpg 1\n\nn01/x.JPEG 0\n'
                                    'n02/sub/c.png 4\n')
    ds = ClassFolderDataset(data_root=str(tree), data_prefix='train',
                            ann_file='meta/train.txt')
    assert len(ds) == 3
    assert ds.get_data_info(0)['img_path'] == osp.join(
        str(tree), 'train', 'n02/a.jpg')
    assert [ds.get_data_info(i)['gt_label'] for i in range(3)] == [1, 0, 4]
    assert ds.metainfo['classes'] == ('0', '1', '2', '3', '4')


def test_pipeline_loads_real_images(tree):
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('densecl_plugin'):
        ds = ClassFolderDataset(
            data_root=str(tree), data_prefix='train',
            pipeline=[dict(type='mmcv.LoadImageFromFile'),
                      dict(type='PackClsInputs')])
        out = ds[1]
    assert out['inputs'].shape[0] == 3 and out['inputs'].shape[1] > 32
    assert out['data_samples'].gt_label.tolist() == [1]


@pytest.mark.parametrize('setup,kwargs,error,match', [
    (None, dict(data_prefix='missing'), FileNotFoundError,
     'image folder .*missing.* does not exist'),
    ('empty_class', dict(data_prefix='train'), FileNotFoundError,
     'class folder .*n03.* has no images'),
    ('no_classes', dict(data_prefix='flat'), FileNotFoundError,
     'has no class sub-folders'),
    (None, dict(data_prefix='train', classes=['n01', 'n09']),
     FileNotFoundError, r"no folder for classes \['n09'\]"),
    (None, dict(data_prefix='train', ann_file='nope.txt'), FileNotFoundError,
     'list file .*nope.txt.* does not exist'),
    ('bad_line', dict(data_prefix='train', ann_file='bad.txt'), ValueError,
     r'bad.txt:2: expected "<relative/path> <int label>", got .*a.jpg one'),
    ('bad_label', dict(data_prefix='train', ann_file='bad.txt',
                       classes=['a', 'b']), ValueError,
     r'bad.txt:1: label 2 is out of range \[0, 2\)'),
    ('empty_list', dict(data_prefix='train', ann_file='bad.txt'), ValueError,
     'has no entries'),
    (None, dict(data_prefix=dict(ann='x')), ValueError, 'data_prefix'),
])
def test_errors_name_the_problem(tree, setup, kwargs, error, match):
    if setup == 'empty_class':
        (tree / 'train' / 'n03').mkdir()
        (tree / 'train' / 'n03' / 'readme.txt').write_text('-')
    elif setup == 'no_classes':
        (tree / 'flat').mkdir()
        shutil.copy(tree / 'train' / 'n01' / 'x.JPEG', tree / 'flat')
    elif setup == 'bad_line':
        (tree / 'bad.txt').write_text('n01/x.JPEG 0\nn02/a.jpg one\n')
    elif setup == 'bad_label':
        (tree / 'bad.txt').write_text('n01/x.JPEG 2\n')
    elif setup == 'empty_list':
        (tree / 'bad.txt').write_text('\n\n')
    with pytest.raises(error, match=match):
        ClassFolderDataset(data_root=str(tree), **kwargs)
