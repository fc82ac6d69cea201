#!/usr/bin/env bash
# The rollout engine's checks for a GPU machine, in one run (prepared for the lent GPU machine;
# not yet run on one). Needs a build with CUDA (build/bin) and a visible GPU.
#
#   bash bench/gpu_rollout_check.sh [OUT_DIR]
#
# 1. stories260K greedy on the GPU through `flywheel generate` (decode steps replayed as CUDA
#    graphs) must equal llama2.c's continuation in tests/data/stories260K/expected_greedy.json.
# 2. The same with CUDA graphs off must agree too (eager GPU steps).
# 3. Throughput on the GPU, float32 and bfloat16, for the rollout benchmark's batch64 and mixed
#    sets (bench/rollout_prompts.py), with the number of graphs captured.
# Everything it prints also goes to OUT_DIR/gpu_rollout_check.txt.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="${1:-$ROOT/build/gpu-check}"
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_rollout_check.txt") 2>&1
MODEL=tests/data/stories260K
PYTHON="${PYTHON:-python3}"

want="$("$PYTHON" -c 'import json; d=json.load(open("'$MODEL'/expected_greedy.json")); print(",".join(map(str, d["greedy_ids"])))')"
count="$("$PYTHON" -c 'import json; print(len(json.load(open("'$MODEL'/expected_greedy.json"))["greedy_ids"]))')"
status=0
for graphs in on off; do
  extra=()
  [[ $graphs == off ]] && extra=(--no-cuda-graphs)
  got="$(build/bin/flywheel generate --model "$MODEL" --prompt-ids 1,403,407,261,378 --greedy \
    --max-new-tokens "$count" --device cuda "${extra[@]}" | tail -n 1)"
  if [[ $got == "$want" ]]; then
    echo "greedy on cuda, graphs $graphs: equals llama2.c ($count tokens)"
  else
    echo "greedy on cuda, graphs $graphs: DIFFERENT from llama2.c"; status=1
  fi
done

"$PYTHON" bench/rollout_prompts.py --vocab 512 --out "$OUT/prompts"
for dtype in float32 bfloat16; do
  for set in batch64:1 mixed:4; do
    build/bin/flywheel_bench_rollout --model "$MODEL" --prompts "$OUT/prompts/${set%%:*}.jsonl" \
      --n "${set#*:}" --device cuda --dtype "$dtype" --reps 3 |
      "$PYTHON" -c 'import json,sys; d=json.loads(sys.stdin.read()); print(sys.argv[1], sys.argv[2], "tokens/s %.0f" % d["tokens_per_s"], "graphs captured", d["graph_captures"])' \
        "$dtype" "${set%%:*}"
  done
done
exit $status
