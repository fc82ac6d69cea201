#!/usr/bin/env bash
# Data-parallel scaling on this machine: the same SFT training run as 1 rank and as 2 ranks
# (flywheel-launch, Gloo), same global batch, tokens/s from metrics.jsonl. See bench/README.md.
#
#   bench/run_dp_scaling.sh
#
# Environment (all optional): BUILD_DIR (default build), STEPS (default 40; the first 5 are
# not timed), REPS (default 2; medians reported), CASES ("model:global_batch ...", models
# being quickstart or a config in bench/configs).
#
# Three runs per model, on the quickstart's addition data and tokenizer:
#   1 rank x all cores       what a single process gets from the machine
#   1 rank x cores/2         one rank's share of the machine
#   2 ranks x cores/2 each   data parallel
# speedup = 2 ranks / (1 rank x all cores); efficiency = 2 ranks / (2 x one rank's share).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD_DIR="${BUILD_DIR:-build}"
STEPS="${STEPS:-40}"
REPS="${REPS:-2}"
CORES="$(nproc)"
HALF=$((CORES / 2 > 0 ? CORES / 2 : 1))
[[ -f "$BUILD_DIR/build.ninja" ]] || { echo "error: configure $BUILD_DIR first" >&2; exit 2; }
cmake --build "$BUILD_DIR" --target flywheel flywheel-launch >&2
BIN="$BUILD_DIR/bin"
WORK="$(mktemp -d /tmp/flywheel-dp-scaling-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
"$BIN/flywheel" quickstart-data --out "$WORK/data" >/dev/null 2>&1

# Median tokens/s of the timed steps of a run directory.
tokens_per_sec() {
  python3 - "$1/metrics.jsonl" 5 <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
tps = [r["tokens_per_sec"] for r in rows if "tokens_per_sec" in r and r["step"] > int(sys.argv[2])]
print(f"{statistics.median(tps):.0f}")
EOF
}

recipe() {  # MODEL_CONFIG MICRO_BATCH OUTPUT_DIR
  cat >"$WORK/recipe.yaml" <<EOF
trainer: sft
seed: 1
output_dir: $3
model:
  config: $1
  tokenizer: $WORK/data
data:
  train_file: $WORK/data/sft_train.jsonl
  chat_template: tulu
  max_length: 32
training:
  max_steps: $STEPS
  epochs: 100
  micro_batch_size: $2
  learning_rate: 1.0e-3
logging:
  progress: lines
  every_steps: 1000
EOF
  echo "$WORK/recipe.yaml"
}

# Runs a command with its output in LOG; on failure shows the log's end and stops.
run() {
  local log="$1"
  shift
  "$@" >"$log" 2>&1 || { echo "error: $* failed:" >&2; tail -n 20 "$log" >&2; exit 1; }
}

median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

printf '%-12s %6s %10s %16s %16s %14s %8s %10s\n' model params batch "1 rank x $CORES thr" \
  "1 rank x $HALF thr" "2 ranks x $HALF" speedup efficiency
for case in ${CASES:-quickstart:64 llama-10m:16 llama-10m:128}; do
  IFS=: read -r model batch <<<"$case"
  if [[ $model == quickstart ]]; then config="$WORK/data/config.json"; else
    config="$ROOT/bench/configs/$model.json"; fi
  full=() half=() two=()
  for rep in $(seq "$REPS"); do
    out="$WORK/run-$model-$batch-$rep"
    run "$out-full.log" env OMP_NUM_THREADS="$CORES" \
      "$BIN/flywheel" train "$(recipe "$config" "$batch" "$out-full")"
    full+=("$(tokens_per_sec "$out-full")")
    run "$out-half.log" env OMP_NUM_THREADS="$HALF" \
      "$BIN/flywheel" train "$(recipe "$config" "$batch" "$out-half")"
    half+=("$(tokens_per_sec "$out-half")")
    run "$out-two.log" env OMP_NUM_THREADS="$HALF" "$BIN/flywheel-launch" --nproc-per-node 2 -- \
      train "$(recipe "$config" $((batch / 2)) "$out-two")"
    two+=("$(tokens_per_sec "$out-two")")
  done
  f="$(median "${full[@]}")" h="$(median "${half[@]}")" t="$(median "${two[@]}")"
  params="$("$BIN/flywheel" inspect "$out-two/model" 2>/dev/null |
    awk '/^parameters/ && !done { print $2; done = 1 }')"
  printf '%-12s %6s %10s %16s %16s %14s %8.2f %10.2f\n' "$model" "${params:-?}" "$batch" "$f" "$h" \
    "$t" "$(awk -v a="$t" -v b="$f" 'BEGIN { print a / b }')" \
    "$(awk -v a="$t" -v b="$h" 'BEGIN { print a / (2 * b) }')"
done
echo "tokens/s: medians over $REPS runs of each run's median step; global batch equal in all runs"
