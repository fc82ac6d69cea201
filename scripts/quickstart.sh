#!/usr/bin/env bash
# README command 1: install dependencies, build, and run the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
./build/bin/flywheel --help
# Self-check on the real pretrained model when the shared assets are present.
stories=../shared/models/stories260K
if [ -d "$stories" ]; then
  ./build/bin/flywheel inspect "$stories" | head -6
  ./build/bin/flywheel generate --model "$stories" --prompt "Once upon a time" --greedy \
    --max-new-tokens 64
fi
