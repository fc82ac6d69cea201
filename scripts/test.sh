#!/usr/bin/env bash
# README command 2: install dependencies, build, run every test (formatting and the layering
# rule included). Used by .ci/run, where (CI=true) compiler warnings are errors and a test
# that would skip fails. Ends with which tests skipped and why, and how long each phase took.
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
bash scripts/skipped-tests.sh build
echo "test.sh: install $((installed - start)) s, build $((built - installed)) s," \
  "tests $((SECONDS - built)) s"
exit $status
