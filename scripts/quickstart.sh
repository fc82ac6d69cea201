#!/usr/bin/env bash
# README command 1: install dependencies, build, and run the quickstart — a small Llama
# trained from scratch on two-digit addition, SFT then DPO, with held-out metrics (loss,
# exact-match accuracy of greedy answers, preference accuracy) before and after each stage.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
flywheel=./build/bin/flywheel
rm -rf runs/quickstart
$flywheel quickstart-data --out runs/quickstart/data
echo "== stage 1: SFT =="
$flywheel train recipes/quickstart/sft.yaml
echo "== stage 2: DPO =="
$flywheel train recipes/quickstart/dpo.yaml
echo "== the trained model answers =="
for q in 23+45 67+18 9+90; do
  printf '%s = ' "$q"
  $flywheel generate --model runs/quickstart/dpo/model --chat tulu --prompt "$q" --greedy \
    --max-new-tokens 6
done
