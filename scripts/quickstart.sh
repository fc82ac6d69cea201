#!/usr/bin/env bash
# README command 1: install dependencies, build, and run the quickstart: the whole post-training
# loop on two-digit addition from nothing (generated data and tokenizer, SFT of a small Llama
# from scratch, DPO on its own verified answers, RLVR with GRPO), ending with a table of each
# stage's held-out accuracy, mean reward and wall time. Extra arguments go to
# `flywheel quickstart` (e.g. grpo.rl.iterations=50).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
./build/bin/flywheel quickstart --out runs/quickstart "$@"
