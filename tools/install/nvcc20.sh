#!/usr/bin/env bash
# nvcc wrapper used only while building mmcv 2.1.0's CUDA ops from source (FORCE_CUDA=1 or a visible GPU).
# torch >= 2.10 headers require C++20, but mmcv 2.1.0 passes -std=c++14/-std=c++17 to nvcc; this rewrites
# that flag and passes everything else to the real nvcc ($LOOPTRANS_REAL_NVCC, else $CUDA_HOME/bin/nvcc).
# torch's ninja build picks it up through PYTORCH_NVCC (set by tools/install/setup_env.sh).
args=()
for a in "$@"; do
  case "$a" in
    -std=c++14|-std=c++17) args+=("-std=c++20") ;;
    *) args+=("$a") ;;
  esac
done
exec "${LOOPTRANS_REAL_NVCC:-${CUDA_HOME:-/usr/local/cuda}/bin/nvcc}" "${args[@]}"
