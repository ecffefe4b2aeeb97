#!/usr/bin/env bash
# C++ compiler wrapper used only while building mmcv 2.1.0 from source.
# torch >= 2.10 headers require C++20, but mmcv 2.1.0's setup.py hard-codes -std=c++17;
# this rewrites that one flag and passes everything else to the real compiler unchanged.
args=()
for a in "$@"; do
  case "$a" in
    -std=c++14|-std=c++17) args+=("-std=c++20") ;;
    *) args+=("$a") ;;
  esac
done
exec "${LOOPTRANS_REAL_CXX:-g++}" "${args[@]}"
