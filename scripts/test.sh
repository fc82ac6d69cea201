#!/usr/bin/env bash
# README command 2: install dependencies, build, run every test. Used by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
ctest --test-dir build --output-on-failure --timeout 900 --parallel "$(nproc)"
