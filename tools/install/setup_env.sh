#!/usr/bin/env bash
# Create (or update) the project's virtual environment at .venv and install everything into it.
#   bash tools/install/setup_env.sh            # from the repository root
# First run on a new machine: ~15-20 min (mmcv 2.1.0 compiles its ops from source; ~12 min on 2 cores).
# pip caches the mmcv wheel, so later runs and new clones take seconds to a minute.
# Environment: PYTHON (default python3.11, else python3), MAX_JOBS (parallel compile jobs, default nproc).
#
# Options (none given: the install above, unchanged):
#   --wheelhouse DIR  install with no network from DIR, made by tools/install/make_wheelhouse.sh
#                     (pip --no-index --find-links DIR, pip's configuration files ignored); mmcv is compiled
#                     here from its sdist in DIR. The test tools (requirements/tests.txt) are not installed.
#   --system-torch    do not install torch/torchvision: use those of the interpreter that creates the venv
#                     (PYTHON or --python: a system, conda or module Python, or another venv). The venv sees
#                     that interpreter's packages through a .pth file (like --system-site-packages, and it
#                     also works when that interpreter is itself a venv); what is installed into the venv
#                     takes precedence, and torch/torchvision are pinned to the versions found.
#   --python PY       the interpreter that creates the venv (same as PYTHON=PY)
#   --venv DIR        where the venv goes (default .venv in the repository root)
#   --optional        also install the optional dependencies (requirements/optional.txt: gradio for
#                     tools/web_demo.py; onnx, onnxruntime
#                     for tools/deployment/pytorch2onnx.py and tools/infer.py --backend onnxruntime); CI does
# Offline GPU node:
#   PYTHON=/path/to/python-with-torch bash tools/install/setup_env.sh --wheelhouse DIR --system-torch
set -euo pipefail
usage() { sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; }
abspath() { case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac; }

VENV=.venv
WHEELHOUSE=
SYSTEM_TORCH=0
OPTIONAL=0
while [ $# -gt 0 ]; do
  case "$1" in
    --wheelhouse) WHEELHOUSE=$(abspath "${2:?--wheelhouse needs a folder}"); shift 2 ;;
    --wheelhouse=*) WHEELHOUSE=$(abspath "${1#*=}"); shift ;;
    --system-torch) SYSTEM_TORCH=1; shift ;;
    --optional) OPTIONAL=1; shift ;;
    --python) PYTHON=${2:?--python needs an interpreter}; shift 2; OPT_PYTHON=1 ;;
    --python=*) PYTHON=${1#*=}; shift; OPT_PYTHON=1 ;;
    --venv) VENV=$(abspath "${2:?--venv needs a folder}"); shift 2 ;;
    --venv=*) VENV=$(abspath "${1#*=}"); shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "setup_env.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
if [ -n "${OPT_PYTHON:-}" ] && [ "${PYTHON#*/}" != "$PYTHON" ]; then PYTHON=$(abspath "$PYTHON"); fi
cd "$(dirname "$0")/../.."

PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ -n "$WHEELHOUSE" ]; then
  if [ ! -d "$WHEELHOUSE" ]; then echo "setup_env.sh: no wheelhouse folder $WHEELHOUSE" >&2; exit 2; fi
  "$PYTHON" tools/install/wheelhouse.py check "$WHEELHOUSE"
  # No network: only DIR. pip's configuration files and index settings of this machine are ignored.
  unset PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_CONSTRAINT
  export PIP_CONFIG_FILE=/dev/null PIP_NO_INDEX=1 PIP_FIND_LINKS="$WHEELHOUSE"
fi
if [ "$SYSTEM_TORCH" = 1 ] && ! "$PYTHON" -c "import torch, torchvision" 2>/dev/null; then
  echo "setup_env.sh: --system-torch: $PYTHON cannot import torch and torchvision. Point PYTHON (or --python)" \
    "at the interpreter that has them, e.g. PYTHON=\$(which python) after loading your torch module." >&2
  exit 2
fi
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip"
PIP_EXTRA=()
if [ "$SYSTEM_TORCH" = 1 ]; then
  # The venv sees every package folder of $PYTHON (its sys.path minus what the venv has anyway), after its
  # own site-packages. torch and torchvision are then pinned so that nothing replaces them.
  SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  rm -f "$SITE/looptrans_system_torch.pth"
  "$PYTHON" - "$VENV/bin/python" > "$SITE/looptrans_system_torch.pth" <<'EOF'
import os, subprocess, sys
venv_path = subprocess.run([sys.argv[1], '-c', 'import sys; print("\\n".join(sys.path))'], check=True,
                           capture_output=True, text=True).stdout.splitlines()
print('\n'.join(p for p in sys.path if p and os.path.isdir(p) and p not in venv_path
                and os.path.abspath(p) != os.getcwd()))
EOF
  "$VENV/bin/python" - "$VENV/system-torch-constraints.txt" <<'EOF'
import importlib.metadata as md, sys, torch, torchvision
pins = [f'{d}=={md.version(d)}\n' for d in ('torch', 'torchvision')]
open(sys.argv[1], 'w').write(''.join(pins))
print(f'setup_env.sh: using torch {torch.__version__} (CUDA {torch.version.cuda}) from '
      f'{torch.__file__.rsplit("/torch/", 1)[0]}, torchvision {torchvision.__version__}')
EOF
  PIP_EXTRA=(-c "$VENV/system-torch-constraints.txt")
fi
$PIP install -q --upgrade "pip>=23.2"
# 1. torch first: mmcv's build imports it.
if [ "$SYSTEM_TORCH" = 0 ]; then
  $PIP install -q -r requirements/torch.txt
fi
# 2. build tools (mmcv's setup.py needs pkg_resources, i.e. setuptools<81). With --system-torch they are
#    upgraded: the venv's bundled setuptools (65.5 on Python 3.11) would shadow the newer one torch requires.
BUILD_UPGRADE=()
if [ "$SYSTEM_TORCH" = 1 ]; then BUILD_UPGRADE=(--upgrade); fi
$PIP install -q ${PIP_EXTRA[@]+"${PIP_EXTRA[@]}"} ${BUILD_UPGRADE[@]+"${BUILD_UPGRADE[@]}"} -r requirements/build.txt
# 3. mmcv with compiled ops, against the installed torch. torch >= 2.10 headers need C++20 while mmcv
#    2.1.0 asks for C++17 (C++14 for nvcc): tools/install/cxx20.sh and nvcc20.sh swap that one flag.
#    CUDA ops are compiled when a GPU is visible or FORCE_CUDA=1 (nvcc must match torch's CUDA version).
if ! "$VENV/bin/python" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '2.1.0'" 2>/dev/null; then
  CXX="$PWD/tools/install/cxx20.sh" PYTORCH_NVCC="$PWD/tools/install/nvcc20.sh" MAX_JOBS=${MAX_JOBS:-$(nproc)} \
    $PIP install ${PIP_EXTRA[@]+"${PIP_EXTRA[@]}"} --no-build-isolation -r requirements/mminstall.txt
fi
# 4. OpenMMLab runtime and test tools, then this project (editable: `import looptrans`).
if [ -z "$WHEELHOUSE" ]; then
  $PIP install -q ${PIP_EXTRA[@]+"${PIP_EXTRA[@]}"} -r requirements/runtime.txt -r requirements/tests.txt
else
  $PIP install -q ${PIP_EXTRA[@]+"${PIP_EXTRA[@]}"} -r requirements/runtime.txt
fi
if [ "$OPTIONAL" = 1 ]; then
  $PIP install -q ${PIP_EXTRA[@]+"${PIP_EXTRA[@]}"} -r requirements/optional.txt
fi
$PIP install -q --no-build-isolation --no-deps -e .
"$VENV/bin/python" -c "import mmcv.ops, mmseg, mmpretrain, looptrans; print('looptrans environment ready:', \
'torch', __import__('torch').__version__, 'mmcv', mmcv.__version__, 'mmseg', mmseg.__version__)"
