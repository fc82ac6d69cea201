#!/usr/bin/env bash
# Flywheel's SFT and DPO steps vs TRL's SFTTrainer and DPOTrainer, side by side in one run: same
# model config, the same token ids (TRL reads the token cache Flywheel wrote), micro-batch 2
# rows (SFT) or 2 pairs (DPO) of ~980 tokens, the same threads; plain, and with each side's
# memory savers (Flywheel: activation checkpointing + chunked log-probs; TRL: gradient
# checkpointing, its only one without extra packages). See bench/README.md.
#
#   bench/run_vs_trl.sh            # needs bench/install-peers.sh (transformers, trl)
#
# Environment (all optional): BUILD_DIR (default build), STEPS (default 4; the first is not
# timed), MODELS (configs in bench/configs, default "llama-10m llama-100m"), TRAINERS (default
# "sft dpo"), THREADS (default: all cores).
#
# Peak memory is each process's peak resident set (wait4's ru_maxrss): the one figure both a
# C++ and a Python process have (libraries included: LibTorch's for both, Python's for TRL).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD_DIR="${BUILD_DIR:-build}"
STEPS="${STEPS:-4}"
MODELS="${MODELS:-llama-10m llama-100m}"
TRAINERS="${TRAINERS:-sft dpo}"
THREADS="${THREADS:-$(nproc)}"
PY="$ROOT/.venv/bin/python"
"$PY" -c "import trl" 2>/dev/null || { echo "error: run bench/install-peers.sh first" >&2; exit 2; }
[[ -f "$BUILD_DIR/build.ninja" ]] || { echo "error: configure $BUILD_DIR first" >&2; exit 2; }
cmake --build "$BUILD_DIR" --target flywheel >&2
BIN="$BUILD_DIR/bin"
WORK="$(mktemp -d /tmp/flywheel-vs-trl-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
export OMP_NUM_THREADS="$THREADS"

python3 "$ROOT/bench/story_data.py" "$WORK/sft.jsonl"
python3 "$ROOT/bench/story_data.py" "$WORK/dpo.jsonl" --pairs

# peak COMMAND...: runs it, prints its output's last line and its peak RSS in MiB.
peak() {
  "$PY" - "$@" <<'PY'
import os, subprocess, sys
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
out = p.stdout.read()
_, status, usage = os.wait4(p.pid, 0)
if os.waitstatus_to_exitcode(status) != 0:
    sys.exit("failed: " + " ".join(sys.argv[1:]) + "\n" + out)
print(out.strip().splitlines()[-1] if out.strip() else "")
print(f"{usage.ru_maxrss / 1024:.0f}")
PY
}

# Median tokens/s of a Flywheel run's timed steps.
flywheel_tps() {
  python3 - "$1/metrics.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"tokens_per_sec"' in l]
print(f"{statistics.median(r['tokens_per_sec'] for r in rows[1:]):.0f}")
PY
}

printf '| trainer | model | setting | Flywheel tok/s | TRL tok/s | Flywheel / TRL |'
printf ' Flywheel peak RSS | TRL peak RSS |\n'
printf '|---|---|---|---|---|---|---|---|\n'
for trainer in $TRAINERS; do
  for model in $MODELS; do
    cat >"$WORK/$trainer-$model.yaml" <<YAML
trainer: $trainer
seed: 1
model:
  config: $ROOT/bench/configs/$model.json
  tokenizer: $ROOT/tests/data/stories260K
data:
  train_file: $WORK/$trainer.jsonl
  max_length: 1024
  cache_dir: $WORK/cache-$trainer-$model
training:
  max_steps: $STEPS
  micro_batch_size: 2
  learning_rate: 1.0e-4
loss:
  type: dpo
  beta: 0.1
logging:
  progress: lines
checkpoint:
  every_steps: 0
YAML
    for setting in plain savers; do
      flags=()
      trl_flags=()
      if [[ $setting == savers ]]; then
        flags=(training.activation_checkpointing=true training.logits_chunk_tokens=1024)
        trl_flags=(--gradient-checkpointing)
      fi
      out="$WORK/$trainer-$model-$setting"
      { read -r _; read -r fw_rss; } < <(peak "$BIN/flywheel" train "$WORK/$trainer-$model.yaml" \
        output_dir="$out" "${flags[@]}")
      fw_tps="$(flywheel_tps "$out")"
      cache="$(ls "$WORK/cache-$trainer-$model"/*.tokens)"
      { read -r trl_json; read -r trl_rss; } < <(peak "$PY" "$ROOT/bench/trl_${trainer}_bench.py" \
        --cache "$cache" --config "$ROOT/bench/configs/$model.json" --steps "$STEPS" --batch 2 \
        --threads "$THREADS" --out "$WORK/trl-$trainer-$model-$setting" "${trl_flags[@]}")
      trl_tps="$(python3 -c 'import json, sys; print(round(json.loads(sys.argv[1])["tokens_per_sec"]))' "$trl_json")"
      ratio="$(python3 -c "print(f'{$fw_tps / $trl_tps:.2f}')")"
      printf '| %s | %s | %s | %s | %s | %s | %s MiB | %s MiB |\n' "$trainer" "$model" "$setting" \
        "$fw_tps" "$trl_tps" "$ratio" "$fw_rss" "$trl_rss"
    done
  done
done
