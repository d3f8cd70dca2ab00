#!/usr/bin/env bash
# Create (once) and reuse the project's virtual environment.
#
#   VENV        where to put it                       (default .venv)
#   TORCH_SPEC  the torch to install when none is there (default torch==2.13.0,
#               a CPU wheel here; an existing torch, e.g. a CUDA build, is kept)
#   PYTHON      the interpreter that creates the venv   (default python3)
#
# mmcv 2.1.0 has no wheel on PyPI for current torch: it is built from source
# with its compiled ops (about 15 minutes on 2 cores, once; pip's wheel cache
# makes later installs take seconds). A stamp file keyed on the requirement
# files makes a second run a no-op.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
PYTHON=${PYTHON:-python3}
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --disable-pip-version-check -q)

key=$(cat setup.py requirements/*.txt tools/setup_env.sh | cksum | cut -d' ' -f1)
stamp="$VENV/.densecl_plugin-env-$key"
if [ -f "$stamp" ]; then
  exit 0
fi
say() { printf '\033[1m[setup_env]\033[0m %s\n' "$*"; }

if [ ! -x "$PY" ]; then
  say "creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
  "${PIP[@]}" --upgrade pip
fi
"${PIP[@]}" -r requirements/build.txt

if "$PY" -c 'import torch' 2>/dev/null; then
  say "keeping torch $("$PY" -c 'import torch; print(torch.__version__)')"
else
  say "installing $TORCH_SPEC"
  "${PIP[@]}" "$TORCH_SPEC"
fi
# torch may pull a newer setuptools; mmcv's setup.py needs pkg_resources
"${PIP[@]}" -r requirements/build.txt numpy

if "$PY" - <<'PYEOF' 2>/dev/null
import importlib.metadata as m, importlib.util as u, glob, os
assert m.version('mmcv') == '2.1.0'
loc = u.find_spec('mmcv').submodule_search_locations[0]
assert glob.glob(os.path.join(loc, '_ext*'))
PYEOF
then
  say "mmcv 2.1.0 with ops already installed"
else
  say "building mmcv ops: about 15 minutes on 2 cores, once; later installs reuse pip's wheel cache"
  if command -v nvcc >/dev/null 2>&1; then
    export FORCE_CUDA=1
    say "nvcc found: building CUDA ops too (TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-auto})"
  fi
  MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
    "${PIP[@]}" --no-build-isolation mmengine==0.10.7 mmcv==2.1.0
fi

say "installing mmdet, mmseg, test tools and densecl_plugin (editable)"
"${PIP[@]}" -r requirements/runtime.txt -r requirements/tests.txt
"${PIP[@]}" --no-build-isolation --no-deps -e .
# `mim train densecl_plugin CONFIG` looks for <distribution location>/densecl_plugin/.mim/tools/train.py.
# A PEP 660 editable install puts the distribution in site-packages with no package folder there, so
# link the package folder in (the same files the editable finder serves).
site=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
[ -e "$site/densecl_plugin" ] || ln -s "$PWD/densecl_plugin" "$site/densecl_plugin"
"$PY" -c 'import densecl_plugin, mmdet, mmseg; print("densecl_plugin", densecl_plugin.__version__, "ready")'
rm -f "$VENV"/.densecl_plugin-env-*
touch "$stamp"
