# Copyright (c) densecl_plugin contributors. All rights reserved.
"""Every relative link and repository path named in the docs exists.

Checked files: ``README.md``, ``CHANGELOG.md``, ``docs/**/*.md`` and
``configs/**/README.md``. Two kinds of reference are checked:

- markdown links and images ``[text](target)``: every target that is not a
  URL or an in-page anchor, relative to the file that names it;
- repository paths in backticks or in code blocks: a token whose first
  component is one of the repository's top-level folders (``densecl_plugin/``,
  ``densecl_lab/``, ``configs/``, ``tools/``, ``tests/``, ``docs/``,
  ``requirements/``, ``.ci/``) or one of its top-level files, relative to the repository root.
  Patterns (``{a,b}``, ``*``, ``<name>``, ``...``, upper-case placeholders)
  are not paths and are skipped. ``CHANGELOG.md`` names files that have
  since moved, so only its links are checked.
- pytest node ids (``tests/x/test_y.py::test_z[param]``,
  ``tests/x/test_y.py::TestZ::test_w``): the file exists and defines every
  named class or function (the parameter id is not checked).
"""
import glob
import os.path as osp
import re
from typing import Iterator, List, Tuple

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOP_DIRS = ('densecl_plugin', 'densecl_lab', 'configs', 'tools', 'tests',
            'docs', 'requirements', '.ci')
TOP_FILES = ('README.md', 'CHANGELOG.md', 'Makefile', 'setup.py',
             'pyproject.toml', 'model-index.yml', 'pytest.ini',
             '.pre-commit-config.yaml')

LINK = re.compile(r'!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)')
BACKTICK = re.compile(r'`([^`\n]+)`')
TOKEN = re.compile(r'[A-Za-z0-9_.\-/{}*<>,:\[\]]+')
FENCE = re.compile(r'^\s*```')


def doc_files(root: str = ROOT) -> List[str]:
    """The markdown files whose references are checked."""
    files = [osp.join(root, 'README.md'), osp.join(root, 'CHANGELOG.md')]
    files += glob.glob(osp.join(root, 'docs', '**', '*.md'), recursive=True)
    files += glob.glob(
        osp.join(root, 'configs', '**', 'README.md'), recursive=True)
    return sorted(f for f in files if osp.isfile(f))


def is_repo_path(token: str) -> bool:
    """Whether a backticked or code-block token names a repository path."""
    token = token.rstrip('.,:;')
    if not token or any(c in token for c in '{}*<>,') or '...' in token:
        return False
    if token in TOP_FILES:
        return True
    first = token.split('/', 1)[0]
    if first not in TOP_DIRS or '/' not in token:
        return False
    # placeholders such as CONFIG, PRETRAIN.pth or <seq> are not paths
    return not any(part.isupper() for part in re.split(r'[/.]', token))


def references(path: str) -> Iterator[Tuple[int, str, str]]:
    """``(line number, kind, target)`` for every reference in ``path``."""
    in_code = False
    with open(path, encoding='utf-8') as f:
        for lineno, line in enumerate(f, 1):
            if FENCE.match(line):
                in_code = not in_code
                continue
            if in_code:
                for token in TOKEN.findall(line):
                    if is_repo_path(token):
                        yield lineno, 'path', token.rstrip('.,:;')
                continue
            for target in LINK.findall(line):
                if re.match(r'[a-z]+:', target) or target.startswith('#'):
                    continue
                yield lineno, 'link', target.split('#', 1)[0]
            for code in BACKTICK.findall(line):
                for token in code.split():
                    if is_repo_path(token):
                        yield lineno, 'path', token.rstrip('.,:;')


def dead_references(path: str, root: str = ROOT) -> List[str]:
    """Every reference of ``path`` that names nothing, as readable lines."""
    dead = []
    history = osp.basename(path) == 'CHANGELOG.md'
    for lineno, kind, target in references(path):
        if history and kind == 'path':
            continue
        base = osp.dirname(path) if kind == 'link' else root
        target, *names = target.split('::')
        where = f'{osp.relpath(path, root)}:{lineno}: {kind}'
        if target and not osp.exists(osp.join(base, target)):
            dead.append(f'{where} {target!r} does not exist')
        elif names:
            with open(osp.join(base, target), encoding='utf-8') as f:
                source = f.read()
            for name in names:
                name = name.split('[', 1)[0]
                if not re.search(rf'^\s*(def|class) {re.escape(name)}\b',
                                 source, re.M):
                    dead.append(f'{where} {target}::{name} is not defined '
                                f'in {target}')
    return dead


def test_the_docs_are_found():
    files = [osp.relpath(f, ROOT) for f in doc_files()]
    assert 'README.md' in files
    assert any(f.startswith('docs/') for f in files)
    assert 'configs/densecl/README.md' in files


@pytest.mark.parametrize(
    'path', doc_files(), ids=lambda p: osp.relpath(p, ROOT))
def test_every_reference_exists(path):
    dead = dead_references(path)
    assert not dead, '\n'.join(dead)


def test_a_dead_reference_is_caught(tmp_path):
    (tmp_path / 'docs').mkdir()
    (tmp_path / 'configs').mkdir()
    (tmp_path / 'configs' / 'real.py').write_text('')
    page = tmp_path / 'docs' / 'page.md'
    page.write_text('[ok](../configs/real.py) [gone](missing.md)\n'
                    '`configs/real.py` `configs/gone.py` `configs/{a,b}.py`\n'
                    '```bash\npython tools/gone.py CONFIG\n```\n'
                    '[web](https://example.com) [anchor](#top)\n')
    dead = dead_references(str(page), root=str(tmp_path))
    assert dead == [
        "docs/page.md:1: link 'missing.md' does not exist",
        "docs/page.md:2: path 'configs/gone.py' does not exist",
        "docs/page.md:4: path 'tools/gone.py' does not exist",
    ]
    history = tmp_path / 'CHANGELOG.md'
    history.write_text('`configs/gone.py` moved; [page](docs/gone.md)\n')
    assert dead_references(str(history), root=str(tmp_path)) == [
        "CHANGELOG.md:1: link 'docs/gone.md' does not exist"
    ]


def test_a_dead_test_id_is_caught(tmp_path):
    (tmp_path / 'docs').mkdir()
    (tmp_path / 'tests').mkdir()
    (tmp_path / 'tests' / 'test_x.py').write_text(
        'class TestY:\n    def test_m(self):\n        pass\n\n\n'
        'def test_a():\n    pass\n')
    page = tmp_path / 'docs' / 'faults.md'
    page.write_text('| a | `tests/test_x.py::test_a[p-1]` |\n'
                    '| b | `tests/test_x.py::TestY::test_m` |\n'
                    '| c | `tests/test_x.py::test_gone` |\n'
                    '| d | `tests/test_gone.py::test_a` |\n')
    assert dead_references(str(page), root=str(tmp_path)) == [
        'docs/faults.md:3: path tests/test_x.py::test_gone is not defined '
        'in tests/test_x.py',
        "docs/faults.md:4: path 'tests/test_gone.py' does not exist",
    ]
