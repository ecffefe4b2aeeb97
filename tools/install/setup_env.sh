#!/usr/bin/env bash
# Create (or update) the project's virtual environment at .venv and install everything into it.
#   bash tools/install/setup_env.sh            # from the repository root
# First run on a new machine: ~15-20 min (mmcv 2.1.0 compiles its ops from source; ~12 min on 2 cores).
# pip caches the mmcv wheel, so later runs and new clones take seconds to a minute.
# Environment: PYTHON (default python3.11, else python3), MAX_JOBS (parallel compile jobs, default nproc).
set -euo pipefail
cd "$(dirname "$0")/../.."

PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
PIP=".venv/bin/python -m pip"
$PIP install -q --upgrade "pip>=23.2"
# 1. torch first: mmcv's build imports it.
$PIP install -q -r requirements/torch.txt
# 2. build tools (mmcv's setup.py needs pkg_resources, i.e. setuptools<81).
$PIP install -q -r requirements/build.txt
# 3. mmcv with compiled ops, against the installed torch. torch >= 2.10 headers need C++20 while mmcv
#    2.1.0 asks for C++17 (C++14 for nvcc): tools/install/cxx20.sh and nvcc20.sh swap that one flag.
#    CUDA ops are compiled when a GPU is visible or FORCE_CUDA=1 (nvcc must match torch's CUDA version).
if ! .venv/bin/python -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '2.1.0'" 2>/dev/null; then
  CXX="$PWD/tools/install/cxx20.sh" PYTORCH_NVCC="$PWD/tools/install/nvcc20.sh" MAX_JOBS=${MAX_JOBS:-$(nproc)} \
    $PIP install --no-build-isolation -r requirements/mminstall.txt
fi
# 4. OpenMMLab runtime and test tools, then this project (editable: `import looptrans`).
$PIP install -q -r requirements/runtime.txt -r requirements/tests.txt
$PIP install -q --no-build-isolation --no-deps -e .
.venv/bin/python -c "import mmcv.ops, mmseg, mmpretrain, looptrans; print('looptrans environment ready:', \
'torch', __import__('torch').__version__, 'mmcv', mmcv.__version__, 'mmseg', mmseg.__version__)"
