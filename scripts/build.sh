#!/usr/bin/env bash
# build.sh - configures and builds one tree. Usage: scripts/build.sh [release|asan|fuzz] (default release)
# TARGETS="a b" builds only those targets.
#   release -> build/        asan -> build-asan/ (ASan+UBSan)      fuzz -> build-fuzz/ (clang, libFuzzer)
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-release}
jobs=$(nproc 2>/dev/null || echo 2)
case "$kind" in
release) dir=build; args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
asan) dir=build-asan; args=(-DCMAKE_BUILD_TYPE=Debug -DMQSEAL_SANITIZE=ON -DMQSEAL_BENCH=OFF) ;;
fuzz) dir=build-fuzz; args=(-DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DMQSEAL_SANITIZE=ON
	-DMQSEAL_FUZZ=ON -DMQSEAL_BENCH=OFF) ;;
*) echo "usage: $0 [release|asan|fuzz]" >&2; exit 2 ;;
esac
cmake -S . -B "$dir" "${args[@]}" >/dev/null
# shellcheck disable=SC2086
cmake --build "$dir" -j "$jobs" ${TARGETS:+--target $TARGETS}
