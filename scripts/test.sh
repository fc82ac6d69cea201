#!/usr/bin/env bash
# README command 2: install dependencies, build, run every test. Used by .ci/run, where
# (CI=true) compiler warnings are errors. Ends with how long each phase took.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
bash scripts/install-deps.sh
installed=$SECONDS
cmake_args=()
[[ "${CI:-}" == true ]] && cmake_args+=(-DFLYWHEEL_WARNINGS_AS_ERRORS=ON)
bash scripts/build.sh "${cmake_args[@]}"
built=$SECONDS
status=0
ctest --test-dir build --output-on-failure --timeout 900 --parallel "$(nproc)" || status=$?
echo "test.sh: install $((installed - start)) s, build $((built - installed)) s," \
  "tests $((SECONDS - built)) s"
exit $status
