"""Decide how tools/setup_env.sh builds mmcv's ops, from the venv's torch.

Run by the venv's interpreter before mmcv is built (the plugin is not installed
yet, so this file only needs the standard library and torch). Prints shell
assignments that setup_env.sh evaluates::

    OPS_KIND=cpu|cpu+cuda|none
    OPS_REASON='...'
    OPS_ENV='FORCE_CUDA=0 MMCV_WITH_OPS=1 ...'   # the build's environment
    WHEEL_DIR='.wheels/mmcv-2.1.0-cp311-torch2.13.0+cpu-cpu'

The rule (a user's own FORCE_CUDA, MMCV_WITH_OPS, CUDA_HOME and
TORCH_CUDA_ARCH_LIST always win):

* CUDA ops only when ``torch.version.cuda`` is set **and** an nvcc is found
  (``$CUDA_HOME/bin/nvcc``, else the ``PATH``) whose CUDA major version is
  torch's; ``CUDA_HOME`` is then set from that nvcc when it is unset.
* Otherwise CPU ops only, whatever is on the ``PATH``: a CUDA toolkit beside a
  CPU torch is ignored (mmcv's build would stop at ``CUDA_HOME is not set`` or
  compile kernels that torch cannot load).
"""
import os
import re
import shlex
import shutil
import subprocess
import sys

MMCV_VERSION = '2.1.0'


def nvcc_release(nvcc: str) -> str | None:
    """The ``release X.Y`` that ``nvcc --version`` prints, or None."""
    try:
        out = subprocess.run([nvcc, '--version'], capture_output=True,
                             text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r'release (\d+)\.(\d+)', out)
    return f'{m.group(1)}.{m.group(2)}' if m else None


def find_nvcc(env: dict) -> str | None:
    cuda_home = env.get('CUDA_HOME')
    if cuda_home:
        cand = os.path.join(cuda_home, 'bin', 'nvcc')
        return cand if os.access(cand, os.X_OK) else None
    return shutil.which('nvcc', path=env.get('PATH'))


def plan(env: dict, torch_version: str, torch_cuda: str | None) -> dict:
    """The build plan: ops kind, the reason, the build environment."""
    build_env = {}
    with_ops = env.get('MMCV_WITH_OPS', '1')
    build_env['MMCV_WITH_OPS'] = with_ops
    if with_ops == '0':
        return dict(kind='none',
                    reason='MMCV_WITH_OPS=0 set by you: mmcv without compiled '
                    'ops (mmdet/mmseg need them; the plugin refuses to '
                    'import)', env=build_env)
    user_force = env.get('FORCE_CUDA')
    nvcc = find_nvcc(env)
    release = nvcc_release(nvcc) if nvcc else None
    if user_force is not None:
        cuda = user_force == '1'
        reason = f'FORCE_CUDA={user_force} set by you'
    elif not torch_cuda:
        cuda = False
        reason = f'torch {torch_version} is a CPU build'
        if nvcc:
            reason += f' (nvcc {release or "?"} at {nvcc} ignored)'
    elif not nvcc:
        cuda = False
        where = (f'$CUDA_HOME/bin ({env["CUDA_HOME"]})'
                 if env.get('CUDA_HOME') else 'the PATH')
        reason = (f'torch {torch_version} has CUDA {torch_cuda} but no nvcc '
                  f'in {where}')
    elif release is None or release.split('.')[0] != torch_cuda.split('.')[0]:
        cuda = False
        reason = (f'nvcc at {nvcc} is CUDA {release or "?"}, torch '
                  f'{torch_version} is CUDA {torch_cuda}: major versions '
                  f'differ')
    else:
        cuda = True
        reason = (f'torch {torch_version} has CUDA {torch_cuda}, nvcc '
                  f'{release} at {nvcc} matches')
    build_env['FORCE_CUDA'] = '1' if cuda else '0'
    if cuda:
        if env.get('CUDA_HOME'):
            build_env['CUDA_HOME'] = env['CUDA_HOME']
        elif nvcc:
            build_env['CUDA_HOME'] = os.path.dirname(
                os.path.dirname(os.path.realpath(nvcc)))
        if env.get('TORCH_CUDA_ARCH_LIST'):
            build_env['TORCH_CUDA_ARCH_LIST'] = env['TORCH_CUDA_ARCH_LIST']
    return dict(kind='cpu+cuda' if cuda else 'cpu', reason=reason,
                env=build_env)


def main() -> int:
    import torch  # the venv's torch: the only thing that decides
    torch_cuda = getattr(getattr(torch, 'version', None), 'cuda', None)
    p = plan(dict(os.environ), torch.__version__, torch_cuda)
    py_tag = f'cp{sys.version_info.major}{sys.version_info.minor}'
    wheel_dir = os.path.join(os.environ.get('WHEEL_ROOT', '.wheels'),
                             f'mmcv-{MMCV_VERSION}-{py_tag}-torch{torch.__version__}-{p["kind"]}')
    ops_env = ' '.join(f'{k}={shlex.quote(v)}' for k, v in p['env'].items())
    print(f'OPS_KIND={shlex.quote(p["kind"])}')
    print(f'OPS_REASON={shlex.quote(p["reason"])}')
    print(f'OPS_ENV={shlex.quote(ops_env)}')
    print(f'OPS_CUDA_HOME={shlex.quote(p["env"].get("CUDA_HOME", ""))}')
    print(f'WHEEL_DIR={shlex.quote(wheel_dir)}')
    print(f'TORCH_VERSION={shlex.quote(torch.__version__)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
