#!/usr/bin/env bash
# Greedy decoding speed: `flywheel generate` (one or more builds side by side) and Hugging Face
# transformers' generate() on the same model, prompt and threads. See bench/README.md.
#
#   bench/run_decode.sh
#
# Environment (all optional):
#   FLYWHEEL_BINS    "label=path ..." Flywheel binaries to compare (default flywheel=build/bin/flywheel)
#   MODELS           model directories (default: tests/data/stories260K, and a random-weight
#                    bench/configs/llama-10m.json checkpoint when transformers is installed)
#   SHORT, LONG      new-token counts of the two runs whose difference is the decode cost
#                    (default 16 and 272)
#   REPS             runs of each binary and count, alternated (default 5); medians reported
#   OMP_NUM_THREADS  threads for every side (default: nproc)
#   PYTHON           Python with transformers for the peer row (default .venv/bin/python;
#                    bench/install-peers.sh installs it); the row is skipped without it
#
# A Flywheel run is a whole process (start-up, loading, prefill, decode), so each binary runs
# SHORT and LONG new tokens and per-token cost = (median(LONG) - median(SHORT)) / (LONG - SHORT):
# start-up and loading cancel out, and what is left of the SHORT run is reported as start-up.
# transformers is timed inside its process around generate() alone. Every side must produce
# the same greedy ids; a mismatch is flagged.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SHORT="${SHORT:-16}"
LONG="${LONG:-272}"
REPS="${REPS:-5}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
FLYWHEEL_BINS="${FLYWHEEL_BINS:-flywheel=$ROOT/build/bin/flywheel}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
if ! ((SHORT > 0 && LONG > SHORT && REPS > 0)); then
  echo "error: need 0 < SHORT < LONG and REPS > 0 (got SHORT=$SHORT LONG=$LONG REPS=$REPS)" >&2
  exit 2
fi
for entry in $FLYWHEEL_BINS; do
  [[ -x "${entry#*=}" ]] || { echo "error: ${entry#*=} is not an executable (FLYWHEEL_BINS)" >&2; exit 2; }
done
WORK="$(mktemp -d /tmp/flywheel-decode-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

have_hf=0
"$PYTHON" -c 'import transformers' 2>/dev/null && have_hf=1

if [[ -z "${MODELS:-}" ]]; then
  MODELS="$ROOT/tests/data/stories260K"
  if ((have_hf)); then
    # A 10M-parameter Llama with random weights, written by transformers itself.
    "$PYTHON" - "$ROOT/bench/configs/llama-10m.json" "$WORK/llama-10m" <<'PY'
import json, sys, torch
from transformers import LlamaConfig, LlamaForCausalLM
torch.manual_seed(0)
LlamaForCausalLM(LlamaConfig(**json.load(open(sys.argv[1])))).save_pretrained(sys.argv[2])
PY
    MODELS="$MODELS $WORK/llama-10m"
  fi
fi

now_ns() { date +%s%N; }

# Median of the numbers on stdin.
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

PROMPT="1,403,407,261,378"  # "Once upon a time" with BOS in stories260K's vocabulary
printf '%-12s %-16s %10s %10s %12s  %s\n' model impl "ms/token" "tokens/s" "start-up s" "ids"
for model in $MODELS; do
  name="$(basename "$model")"
  [[ -f "$model/config.json" ]] || { echo "skipping $model: no config.json" >&2; continue; }
  ref_ids=""
  # One untimed run each, so the first timed one does not pay for reading the libraries and
  # the checkpoint from disk.
  for entry in $FLYWHEEL_BINS; do
    "${entry#*=}" generate --model "$model" --prompt-ids "$PROMPT" --greedy --max-new-tokens 1 \
      >/dev/null
  done
  for rep in $(seq 1 "$REPS"); do
    for entry in $FLYWHEEL_BINS; do
      label="${entry%%=*}" bin="${entry#*=}"
      for n in "$SHORT" "$LONG"; do
        t0="$(now_ns)"
        out="$("$bin" generate --model "$model" --prompt-ids "$PROMPT" --greedy --ignore-eos \
          --max-new-tokens "$n" | tail -n 1)"
        t1="$(now_ns)"
        echo $(((t1 - t0) / 1000)) >>"$WORK/$name.$label.$n"
        [[ $n == "$LONG" ]] && echo "$out" >"$WORK/$name.$label.ids"
      done
    done
  done
  for entry in $FLYWHEEL_BINS; do
    label="${entry%%=*}"
    short_us="$(median <"$WORK/$name.$label.$SHORT")"
    long_us="$(median <"$WORK/$name.$label.$LONG")"
    ids="$(cat "$WORK/$name.$label.ids")"
    [[ -z $ref_ids ]] && ref_ids="$ids"
    awk -v m="$name" -v l="$label" -v s="$short_us" -v g="$long_us" -v a="$SHORT" -v b="$LONG" \
      -v same="$([[ $ids == "$ref_ids" ]] && echo same || echo DIFFERENT)" 'BEGIN {
        ms = (g - s) / 1000 / (b - a); up = (s / 1000 - a * ms) / 1000
        printf "%-12s %-16s %10.3f %10.0f %12.2f  %s\n", m, l, ms, 1000 / ms, up, same }'
  done
  if ((have_hf)); then
    line="$("$PYTHON" bench/decode_hf.py --model "$model" --prompt-ids "$PROMPT" \
      --new-tokens "$LONG" --reps 3 2>/dev/null)"
    "$PYTHON" - "$line" "$ref_ids" "$name" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
same = ",".join(map(str, r["ids"])) == sys.argv[2]
print(f"{sys.argv[3]:<12} {'transformers':<16} {r['ms_per_token']:>10.3f} "
      f"{1000 / r['ms_per_token']:>10.0f} {'-':>12}  {'same' if same else 'DIFFERENT'}")
PY
  fi
done
echo "threads $OMP_NUM_THREADS; $REPS runs each of $SHORT and $LONG new tokens (greedy, batch 1)"
