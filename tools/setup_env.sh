#!/usr/bin/env bash
# Create (once) and reuse the project's virtual environment.
#
#   tools/setup_env.sh [--dry-run]
#
#   --dry-run   print the plan (Python, torch, mmcv ops, what else) and install
#               nothing, even when the venv is ready
#
#   VENV        where to put it                       (default .venv)
#   TORCH_SPEC  the torch to install when none is there (default torch==2.13.0,
#               a CPU wheel here; an existing torch, e.g. a CUDA build, is kept)
#   PYTHON      the interpreter that creates the venv   (default python3)
#   WHEEL_ROOT  where built mmcv wheels are kept        (default .wheels)
#
# mmcv 2.1.0 has no wheel on PyPI for current torch: it is built from source
# with its compiled ops (about 12-15 minutes on 2 cores, once). The built wheel
# is kept in $WHEEL_ROOT (ignored by git), keyed on Python, torch and the ops
# kind, so `make clean-env && make test` does not compile it again even when
# pip's cache is gone. Which ops are built is decided from the venv's torch,
# never from the PATH (tools/setup_env_plan.py): CUDA ops only for a CUDA torch
# with an nvcc of the same CUDA major version. Your own FORCE_CUDA,
# MMCV_WITH_OPS, CUDA_HOME and TORCH_CUDA_ARCH_LIST win.
# A stamp file keyed on the requirement files makes a second run a no-op.
set -euo pipefail
# The whole script is one function, parsed before it runs: editing this file
# while a long build runs cannot change what the running copy does.
main() {
cd "$(dirname "$0")/.."
DRY=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY=1 ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup_env.sh: unknown argument '$arg' (expected --dry-run or --help)" >&2; exit 2 ;;
  esac
done
VENV=${VENV:-.venv}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
PYTHON=${PYTHON:-python3}
export WHEEL_ROOT=${WHEEL_ROOT:-.wheels}
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --disable-pip-version-check -q)

key=$(cat setup.py requirements/*.txt tools/setup_env.sh tools/setup_env_plan.py | cksum | cut -d' ' -f1)
stamp="$VENV/.densecl_plugin-env-$key"
if [ -f "$stamp" ] && [ "$DRY" = 0 ]; then
  exit 0
fi
say() { printf '\033[1m[setup_env]\033[0m %s\n' "$*"; }

mmcv_ready() {
  "$PY" - <<'PYEOF' 2>/dev/null
import importlib.metadata as m, importlib.util as u, glob, os
assert m.version('mmcv') == '2.1.0'
loc = u.find_spec('mmcv').submodule_search_locations[0]
assert glob.glob(os.path.join(loc, '_ext*'))
PYEOF
}
ops_line() {
  if [ "$OPS_KIND" = cpu+cuda ]; then echo "mmcv ops: cpu+cuda (CUDA_HOME=$OPS_CUDA_HOME)"; else echo "mmcv ops: $OPS_KIND"; fi
}

if [ "$DRY" = 1 ]; then
  echo "setup_env plan (dry run: nothing is installed)"
  if [ -x "$PY" ]; then
    echo "python: $VENV exists ($("$PY" --version 2>&1))"
  else
    echo "python: create $VENV with $("$PYTHON" --version 2>&1) ($(command -v "$PYTHON"))"
  fi
  if [ -x "$PY" ] && "$PY" -c 'import torch' 2>/dev/null; then
    eval "$("$PY" tools/setup_env_plan.py)"
    echo "torch: keep $TORCH_VERSION"
    ops_line
    echo "  why: $OPS_REASON"
    echo "  build env: $OPS_ENV${TORCH_CUDA_ARCH_LIST:+ (TORCH_CUDA_ARCH_LIST from you)}"
    if mmcv_ready; then
      echo "mmcv: keep 2.1.0 with ops (a rebuild would be kept in $WHEEL_DIR)"
    elif ls "$WHEEL_DIR"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
      echo "mmcv: install the kept wheel $(ls "$WHEEL_DIR"/mmcv-2.1.0-*.whl | head -1)"
    else
      echo "mmcv: build 2.1.0 from source ($OPS_ENV; about 15 minutes on 2 cores), keep the wheel in $WHEEL_DIR"
    fi
  else
    echo "torch: install $TORCH_SPEC"
    echo "mmcv ops: decided once $TORCH_SPEC is installed (cpu unless that torch has CUDA and an nvcc of the same CUDA major version is found)"
  fi
  echo "then: $(grep -hv '^#' requirements/build.txt | xargs) (build tools);" \
       "$(grep -hv '^#' requirements/runtime.txt requirements/tests.txt | xargs);" \
       "$(grep -hv '^#' requirements/tests_no_deps.txt | xargs) (--no-deps); densecl_plugin (editable)"
  if [ -f "$stamp" ]; then
    echo "stamp: $stamp exists: the venv is ready, a real run installs nothing"
  else
    echo "stamp: $stamp missing: a real run installs what is missing"
  fi
  exit 0
fi

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

eval "$("$PY" tools/setup_env_plan.py)"
say "$(ops_line): $OPS_REASON"
if mmcv_ready; then
  say "mmcv 2.1.0 with ops already installed"
else
  if ! ls "$WHEEL_DIR"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
    say "building mmcv 2.1.0 ops ($OPS_ENV): about 15 minutes on 2 cores, once; the wheel is kept in $WHEEL_DIR"
    mkdir -p "$WHEEL_DIR"
    tmp="$WHEEL_DIR.partial"
    rm -rf "$tmp"
    env $OPS_ENV MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
      "$PY" -m pip wheel --disable-pip-version-check -q --no-build-isolation --no-deps \
      -w "$tmp" mmcv==2.1.0
    mv "$tmp"/mmcv-2.1.0-*.whl "$WHEEL_DIR"/
    rm -rf "$tmp"
  else
    say "installing the kept mmcv wheel from $WHEEL_DIR"
  fi
  "${PIP[@]}" mmengine==0.10.7 "$(ls "$WHEEL_DIR"/mmcv-2.1.0-*.whl | head -1)"
  mmcv_ready || { echo "setup_env.sh: mmcv 2.1.0 from $WHEEL_DIR has no compiled ops (mmcv/_ext*)" >&2; exit 1; }
fi

say "installing mmdet, mmseg, test tools and densecl_plugin (editable)"
"${PIP[@]}" -r requirements/runtime.txt -r requirements/tests.txt
"${PIP[@]}" --no-deps -r requirements/tests_no_deps.txt  # timm: without torchvision
"${PIP[@]}" --no-build-isolation --no-deps -e .
# `mim train densecl_plugin CONFIG` looks for <distribution location>/densecl_plugin/.mim/tools/train.py.
# A PEP 660 editable install puts the distribution in site-packages with no package folder there, so
# link the package folder in (the same files the editable finder serves).
site=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
[ -e "$site/densecl_plugin" ] || ln -s "$PWD/densecl_plugin" "$site/densecl_plugin"
"$PY" -c 'import densecl_plugin, mmdet, mmseg; print("densecl_plugin", densecl_plugin.__version__, "ready")'
rm -f "$VENV"/.densecl_plugin-env-*
touch "$stamp"
}
main "$@"
exit $?
