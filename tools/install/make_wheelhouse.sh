#!/usr/bin/env bash
# Gather, on a machine with internet, everything `setup_env.sh --wheelhouse DIR --system-torch` needs to
# install looptrans on a machine without one (a GPU node with its own CUDA torch), except torch/torchvision:
# mmcv 2.1.0's source (compiled there), the OpenMMLab wheels and all their dependencies, and the build tools,
# as wheels for one Python version on Linux x86_64 (manylinux).
#
#   bash tools/install/make_wheelhouse.sh DIR [--python-version 3.12] [--have node-packages.txt]
#        [--glibc 2.28] [--opencv headless|python] [--max-mib 64] [--strict-size] [--overwrite]
#
#   --python-version X.Y  the target's Python (default 3.11)
#   --have FILE           the target's `python -m pip list --format=freeze`: what it already has (numpy,
#                         scipy, ...) is left out, and the rest is resolved against those versions
#   --glibc X.Y           the target's glibc (default 2.28, what torch >= 2.6 wheels need)
#   --opencv headless     (default) opencv-python-headless, the same cv2 without GUI: needs no libGL.so.1
#                         (often missing on GPU nodes) and is ~15 MiB smaller; a files-less stand-in
#                         opencv-python wheel satisfies mmengine's requirement by name. `--opencv python`
#                         takes the opencv-python wheel instead, as the online install does
#   --max-mib N           warn (with --strict-size: fail, exit 3) when the folder is larger (default 64)
#
# Environment: PYTHON, the interpreter whose pip downloads (default: pythonX.Y of the target version when
# on the PATH, so that environment markers are evaluated for that version; else python3).
# Then copy DIR and this repository to the target and run there:
#   PYTHON=/path/to/python-with-torch bash tools/install/setup_env.sh --wheelhouse DIR --system-torch
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ $# -lt 1 ] || [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'
  [ $# -ge 1 ] && exit 0 || exit 2
fi
pyver=3.11
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$i]}" in
    --python-version) pyver="${args[$((i + 1))]:-}" ;;
    --python-version=*) pyver="${args[$i]#*=}" ;;
  esac
done
if [ -z "${PYTHON:-}" ]; then
  PYTHON=$(command -v "python$pyver" 2>/dev/null || command -v python3)
  # a pyenv shim exists for versions that are not installed: check that it runs
  "$PYTHON" -c "import pip" >/dev/null 2>&1 || PYTHON=$(command -v python3)
fi
exec "$PYTHON" "$here/wheelhouse.py" make --python "$PYTHON" "$@"
