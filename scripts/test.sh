#!/usr/bin/env bash
# README command 2: install dependencies, build, run every test. Used by .ci/run, where
# (CI=true) compiler warnings are errors.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake_args=()
[[ "${CI:-}" == true ]] && cmake_args+=(-DFLYWHEEL_WARNINGS_AS_ERRORS=ON)
bash scripts/build.sh "${cmake_args[@]}"
ctest --test-dir build --output-on-failure --timeout 900 --parallel "$(nproc)"
