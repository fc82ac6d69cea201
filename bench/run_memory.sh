#!/usr/bin/env bash
# Peak memory and throughput of SFT steps at sequence length 1024 with each memory saver, and
# ZeRO stages 1, 2 and 3 on 2 ranks (flywheel-launch, Gloo), beside what `flywheel plan`
# predicts for each. See bench/README.md.
#
#   bench/run_memory.sh
#
# Environment (all optional): BUILD_DIR (default build), STEPS (default 4; the first is not
# timed), MODELS (configs in bench/configs, default "llama-10m llama-100m").
#
# Every run trains the same fresh model (model.config, seed 1) on the same synthetic records
# of ~1000 tokens in the stories260K vocabulary, micro-batch 2, and reports the run's
# peak_memory_gb (the peak of live tensor bytes, the largest of the ranks') and the median
# tokens/s of its timed steps. Columns: plain; + activation checkpointing; + chunked label
# log-probs (1024 tokens a chunk); both; and both on 2 ranks at ZeRO 1, 2 and 3 (1 core each).
# The planned row is `flywheel plan` for the same recipe with data.max_length=985, the rows'
# length.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD_DIR="${BUILD_DIR:-build}"
STEPS="${STEPS:-4}"
MODELS="${MODELS:-llama-10m llama-100m}"
[[ -f "$BUILD_DIR/build.ninja" ]] || { echo "error: configure $BUILD_DIR first" >&2; exit 2; }
cmake --build "$BUILD_DIR" --target flywheel flywheel-launch >&2
BIN="$BUILD_DIR/bin"
WORK="$(mktemp -d /tmp/flywheel-memory-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

python3 "$ROOT/bench/story_data.py" "$WORK/sft.jsonl"

# run NAME MODEL LAUNCHER [key=value ...]: one training run, by one process ("") or two
# ranks ("two_ranks"); prints "peak_MiB tokens_per_sec planned_MiB".
run() {
  local name="$1" model="$2" launcher="$3"
  shift 3
  local out="$WORK/$model-$name"
  cat >"$out.yaml" <<YAML
trainer: sft
seed: 1
model:
  config: $ROOT/bench/configs/$model.json
  tokenizer: $ROOT/tests/data/stories260K
data:
  train_file: $WORK/sft.jsonl
  max_length: 1024
training:
  max_steps: $STEPS
  micro_batch_size: 2
  learning_rate: 1.0e-4
logging:
  progress: lines
checkpoint:
  every_steps: 0
YAML
  local command=("$BIN/flywheel") world=1
  if [[ "$launcher" == two_ranks ]]; then
    command=("$BIN/flywheel-launch" --nproc-per-node 2 --master-port "$((29600 + RANDOM % 1000))" --)
    world=2
  fi
  "${command[@]}" train "$out.yaml" output_dir="$out" "$@" >"$out.log" 2>&1 ||
    { echo "error: $name on $model failed, see below" >&2; cat "$out.log" >&2; exit 1; }
  "$BIN/flywheel" plan "$out.yaml" --world-size "$world" output_dir="$out" data.max_length=985 "$@" \
    >"$out.plan"
  python3 - "$out/metrics.jsonl" "$out.plan" <<'PY'
import json, re, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"tokens_per_sec"' in l]
timed = [r["tokens_per_sec"] for r in rows[1:]] or [rows[-1]["tokens_per_sec"]]
planned = float(re.search(r"peak per rank\s+([0-9.]+) GiB", open(sys.argv[2]).read()).group(1))
print(f'{rows[-1]["peak_memory_gb"] * 1024:.0f} {statistics.median(timed):.0f} {planned * 1024:.0f}')
PY
}

printf '| model | | plain | + checkpointing | + chunked log-probs | both | both, ZeRO-1 x 2 |'
printf ' both, ZeRO-2 x 2 | both, ZeRO-3 x 2 |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'
for model in $MODELS; do
  measured=() planned=() speed=()
  runs=("plain||" "ckpt||training.activation_checkpointing=true"
    "chunk||training.logits_chunk_tokens=1024"
    "both||training.activation_checkpointing=true training.logits_chunk_tokens=1024")
  for zero in 1 2 3; do
    runs+=("zero$zero|two_ranks|${runs[3]#both||} distributed.zero_stage=$zero")
  done
  for spec in "${runs[@]}"; do
    IFS='|' read -r name launcher overrides <<<"$spec"
    # shellcheck disable=SC2086  # the overrides are separate words
    read -r peak tps plan < <(run "$name" "$model" "$launcher" $overrides)
    measured+=("$peak MiB") planned+=("$plan MiB") speed+=("$tps")
  done
  printf '| %s | measured |' "$model"
  printf ' %s |' "${measured[@]}"
  printf '\n| | planned |'
  printf ' %s |' "${planned[@]}"
  printf '\n| | tokens/s |'
  printf ' %s |' "${speed[@]}"
  printf '\n'
done
