# Copyright (c) densecl_plugin contributors. All rights reserved.
"""tools/setup_env.sh --dry-run: the plan, decided from the venv's torch.

Each case runs the real script on a stand-in venv whose ``python`` sees a
stand-in ``torch`` (its ``__version__`` and ``version.cuda`` are all the plan
reads) and a stand-in ``nvcc`` on the PATH, so no CUDA toolkit or CUDA torch
is needed to check the CUDA branches.
"""
import os
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'tools', 'setup_env.sh')


def _fake_venv(tmp_path, torch_version='2.13.0+cpu', torch_cuda=None):
    standin = tmp_path / 'standin'
    (standin / 'torch').mkdir(parents=True)
    (standin / 'torch' / '__init__.py').write_text(
        f'__version__ = {torch_version!r}\n'
        f'class version:\n    cuda = {torch_cuda!r}\n')
    venv = tmp_path / 'venv'
    (venv / 'bin').mkdir(parents=True)
    py = venv / 'bin' / 'python'
    py.write_text(f'#!/bin/sh\nPYTHONPATH={standin} exec {sys.executable} "$@"\n')
    py.chmod(0o755)
    return venv


def _fake_nvcc(tmp_path, release='13.0'):
    cuda = tmp_path / f'cuda-{release}'
    (cuda / 'bin').mkdir(parents=True)
    nvcc = cuda / 'bin' / 'nvcc'
    nvcc.write_text('#!/bin/sh\necho "nvcc: NVIDIA (R) Cuda compiler driver"\n'
                    f'echo "Cuda compilation tools, release {release}, V{release}.48"\n')
    nvcc.chmod(0o755)
    return cuda


def _dry_run(venv, path_dirs=(), **env):
    full = {k: v for k, v in os.environ.items()
            if k not in ('FORCE_CUDA', 'MMCV_WITH_OPS', 'CUDA_HOME',
                         'TORCH_CUDA_ARCH_LIST', 'TORCH_SPEC')}
    full['PATH'] = os.pathsep.join([*map(str, path_dirs), full['PATH']])
    full['VENV'] = str(venv)
    full.update(env)
    res = subprocess.run(['bash', SCRIPT, '--dry-run'], env=full, cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return res.stdout


def _line(out, prefix):
    lines = [line for line in out.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, out
    return lines[0]


def test_cpu_torch_ignores_nvcc_on_path(tmp_path):
    cuda = _fake_nvcc(tmp_path, '13.0')
    out = _dry_run(_fake_venv(tmp_path), [cuda / 'bin'])
    assert _line(out, 'mmcv ops:') == 'mmcv ops: cpu'
    why = _line(out, '  why:')
    assert 'CPU build' in why and f'{cuda}/bin/nvcc ignored' in why
    assert 'FORCE_CUDA=0' in _line(out, '  build env:')
    assert _line(out, 'torch:') == 'torch: keep 2.13.0+cpu'


def test_cuda_version_mismatch_builds_cpu_ops(tmp_path):
    cuda = _fake_nvcc(tmp_path, '13.0')
    out = _dry_run(_fake_venv(tmp_path, '2.13.0+cu126', '12.6'), [cuda / 'bin'])
    assert _line(out, 'mmcv ops:') == 'mmcv ops: cpu'
    assert 'CUDA 13.0' in out and 'CUDA 12.6' in out and 'differ' in out


def test_cuda_torch_without_nvcc_builds_cpu_ops(tmp_path):
    empty = tmp_path / 'nothing'
    empty.mkdir()
    out = _dry_run(_fake_venv(tmp_path, '2.13.0+cu130', '13.0'),
                   CUDA_HOME=str(empty))
    assert _line(out, 'mmcv ops:') == 'mmcv ops: cpu'
    assert 'no nvcc' in _line(out, '  why:')


def test_matching_cuda_sets_cuda_home_from_nvcc(tmp_path):
    cuda = _fake_nvcc(tmp_path, '13.0')
    out = _dry_run(_fake_venv(tmp_path, '2.13.0+cu130', '13.0'), [cuda / 'bin'])
    assert _line(out, 'mmcv ops:') == f'mmcv ops: cpu+cuda (CUDA_HOME={cuda})'
    env = _line(out, '  build env:')
    assert 'FORCE_CUDA=1' in env and f'CUDA_HOME={cuda}' in env
    # the kept wheel is keyed on the torch build and the ops kind
    assert 'torch2.13.0+cu130-cpu+cuda' in out


@pytest.mark.parametrize('env,expect_ops,expect_in', [
    (dict(FORCE_CUDA='0'), 'mmcv ops: cpu', 'FORCE_CUDA=0 set by you'),
    (dict(FORCE_CUDA='1', CUDA_HOME='{cuda}'), 'mmcv ops: cpu+cuda (CUDA_HOME={cuda})',
     'FORCE_CUDA=1 set by you'),
    (dict(TORCH_CUDA_ARCH_LIST='9.0'), 'mmcv ops: cpu+cuda (CUDA_HOME={cuda})',
     'TORCH_CUDA_ARCH_LIST=9.0'),
    (dict(MMCV_WITH_OPS='0'), 'mmcv ops: none', 'MMCV_WITH_OPS=0 set by you'),
])
def test_user_overrides_win(tmp_path, env, expect_ops, expect_in):
    cuda = _fake_nvcc(tmp_path, '13.0')
    env = {k: v.format(cuda=cuda) for k, v in env.items()}
    # the torch matches the nvcc, so without overrides the plan is cpu+cuda
    out = _dry_run(_fake_venv(tmp_path, '2.13.0+cu130', '13.0'), [cuda / 'bin'], **env)
    assert _line(out, 'mmcv ops:') == expect_ops.format(cuda=cuda)
    assert expect_in in out


def test_user_cuda_home_is_where_nvcc_is_looked_for(tmp_path):
    on_path = _fake_nvcc(tmp_path, '13.0')
    other = tmp_path / 'other'
    other.mkdir()
    # CUDA_HOME given without an nvcc in it: the PATH's matching nvcc is not used
    out = _dry_run(_fake_venv(tmp_path, '2.13.0+cu130', '13.0'), [on_path / 'bin'],
                   CUDA_HOME=str(other))
    assert _line(out, 'mmcv ops:') == 'mmcv ops: cpu'
    assert str(other) in _line(out, '  why:')


def test_no_venv_yet_plans_the_torch_spec(tmp_path):
    out = _dry_run(tmp_path / 'absent', TORCH_SPEC='torch==2.13.0')
    assert _line(out, 'python:').startswith(f'python: create {tmp_path / "absent"}')
    assert _line(out, 'torch:') == 'torch: install torch==2.13.0'
    assert _line(out, 'mmcv ops:').startswith('mmcv ops: decided once torch==2.13.0')
    assert not (tmp_path / 'absent').exists()


def _tree(root):
    return sorted((p, os.stat(osp.join(d, p)).st_mtime_ns)
                  for d, _, files in os.walk(root) for p in files)


def test_dry_run_installs_nothing_even_when_ready(tmp_path):
    venv = _fake_venv(tmp_path)
    stamp = _line(_dry_run(venv), 'stamp:').split()[1]
    assert stamp.startswith(str(venv))
    open(stamp, 'w').close()
    before = _tree(tmp_path)
    out = _dry_run(venv)
    assert 'exists: the venv is ready' in _line(out, 'stamp:')
    assert 'mmcv ops: cpu' in out  # the plan is printed although the stamp is there
    assert _tree(tmp_path) == before


def test_ready_venv_reinstalls_nothing(tmp_path):
    venv = _fake_venv(tmp_path)
    stamp = _line(_dry_run(venv), 'stamp:').split()[1]
    open(stamp, 'w').close()
    before = _tree(tmp_path)
    env = dict(os.environ, VENV=str(venv))
    res = subprocess.run(['bash', SCRIPT], env=env, cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0 and res.stdout == '' and res.stderr == ''
    assert _tree(tmp_path) == before


def test_unknown_argument_is_named(tmp_path):
    res = subprocess.run(['bash', SCRIPT, '--dryrun'], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 2 and "'--dryrun'" in res.stderr
